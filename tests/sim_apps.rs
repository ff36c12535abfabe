//! The application and api quirks the recordings show, each pinned by a test over a real
//! socket with the real client: what a daemon must not get wrong about FreeSWITCH.
//!
//! The recordings and `flows/README.md` are the source of every expectation here.

mod support;

use std::time::Duration;

use callbackd::sim::{Party, Scenario};
use support::harness::{completion, on, Harness};

const S: Duration = Duration::from_secs(1);

#[tokio::test]
async fn terminator_digit_and_uuid_break_both_end_playback_with_file_played() {
    let mut h = Harness::start().await;
    let (a, b) = h.queue_call().await;
    assert_eq!(
        h.api(&format!("uuid_setvar {b} playback_terminators 2"))
            .await,
        "+OK\n"
    );
    let play = h.exec(&b, "playback", "local_stream://moh").await;
    h.run(S).await;
    assert_eq!(
        h.api(&format!("uuid_send_dtmf {a} 2")).await,
        format!("+OK {a} sent DTMF 2.\n")
    );
    let evs = h.run(S).await;
    let done = completion(&evs, &play.event_uuid).expect("completed");
    assert_eq!(done.header("Application-Response").unwrap(), "FILE PLAYED");
    assert_eq!(done.variable("playback_terminator_used").unwrap(), "2");
    let names = on(&evs, &b);
    assert_eq!(
        &names[..4],
        [
            "DTMF",
            "PLAYBACK_STOP",
            "CHANNEL_EXECUTE_COMPLETE playback -> FILE PLAYED",
            "PRIVATE_COMMAND"
        ]
    );

    let play = h.exec(&b, "playback", "local_stream://moh").await;
    h.run(S).await;
    assert_eq!(h.api(&format!("uuid_break {b} all")).await, "+OK\n");
    let evs = h.run(S).await;
    let done = completion(&evs, &play.event_uuid).expect("completed");
    assert_eq!(done.header("Application-Response").unwrap(), "FILE PLAYED");
    // Playback clears it when it starts: only this tells the two endings apart.
    assert!(done.variable("playback_terminator_used").is_none());
}

#[tokio::test]
async fn dtmf_events_carry_no_variables_and_cross_the_loopback_pair() {
    let mut h = Harness::start().await;
    let (a, b) = h.queue_call().await;
    h.api(&format!("uuid_send_dtmf {a} 1#")).await;
    let evs = h.run(S).await;
    let dtmf: Vec<_> = evs.iter().filter(|e| e.is("DTMF")).collect();
    assert_eq!(dtmf.len(), 2);
    for e in &dtmf {
        assert_eq!(
            e.unique_id().unwrap(),
            b,
            "send_dtmf X arrives on X's partner"
        );
        assert_eq!(e.header("DTMF-Source").unwrap(), "UNKNOWN");
        assert!(e.headers().iter().all(|(n, _)| !n.starts_with("variable_")));
    }
    assert_eq!(dtmf[1].header("DTMF-Digit").unwrap(), "#");
    assert_eq!(
        h.api(&format!("uuid_recv_dtmf {b} 5")).await,
        format!("+OK {b} received DTMF 5.\n")
    );
    let evs = h.run(S).await;
    let e = evs.iter().find(|e| e.is("DTMF")).unwrap();
    assert_eq!(e.unique_id().unwrap(), b);
    assert_eq!(e.header("DTMF-Source").unwrap(), "APP");
}

#[tokio::test]
async fn play_and_get_digits_completes_with_none_and_reports_through_variables() {
    let mut h = Harness::start().await;
    let (a, b) = h.queue_call().await;
    let pagd = h
        .exec(
            &b,
            "play_and_get_digits",
            "8 16 3 7000 # prompt.wav invalid.wav cb_number ^\\d+$ 3000",
        )
        .await;
    h.api(&format!("uuid_send_dtmf {a} 0049301234567#")).await;
    let evs = h.run(S).await;
    let done = completion(&evs, &pagd.event_uuid).expect("completed");
    assert_eq!(done.header("Application-Response").unwrap(), "_none_");
    assert_eq!(done.variable("cb_number").unwrap(), "0049301234567");
    assert_eq!(done.variable("read_terminator_used").unwrap(), "#");
    assert_eq!(done.variable("read_result").unwrap(), "success");
    assert_eq!(
        h.api(&format!("uuid_getvar {b} cb_number_terminator"))
            .await,
        "_undef_"
    );

    // No input: the invalid prompt still plays after the last try, the variable stays
    // unset, and stale read_* variables linger.
    let pagd = h
        .exec(
            &b,
            "play_and_get_digits",
            "1 1 1 2000 # digits/3.wav invalid.wav cb_noinput \\d 1000",
        )
        .await;
    let evs = h.run(10 * S).await;
    let played: Vec<_> = evs
        .iter()
        .filter(|e| e.is("PLAYBACK_START"))
        .map(|e| e.header("Playback-File-Path").unwrap().into_owned())
        .collect();
    assert_eq!(played, ["digits/3.wav", "invalid.wav"]);
    let done = completion(&evs, &pagd.event_uuid).expect("completed");
    assert_eq!(done.header("Application-Response").unwrap(), "_none_");
    assert_eq!(done.variable("read_result").unwrap(), "failure");
    assert_eq!(done.variable("read_terminator_used").unwrap(), "#");
    assert_eq!(
        h.api(&format!("uuid_getvar {b} cb_noinput")).await,
        "_undef_"
    );
}

#[tokio::test]
async fn play_and_get_digits_collects_star_checks_the_regex_and_reports_a_digit_timeout() {
    let mut h = Harness::start().await;
    let (a, b) = h.queue_call().await;
    let args = |var: &str| format!("1 17 1 7000 # prompt.wav invalid.wav {var} ^[*]?[0-9]+$ 3000");

    // `*` is a digit like any other unless it is a terminator.
    let pagd = h.exec(&b, "play_and_get_digits", &args("cb_star")).await;
    h.api(&format!("uuid_send_dtmf {a} *4930123456#")).await;
    let evs = h.run(S).await;
    let done = completion(&evs, &pagd.event_uuid).expect("completed");
    assert_eq!(done.variable("cb_star").unwrap(), "*4930123456");
    assert_eq!(done.variable("read_result").unwrap(), "success");

    // The regex refuses a star inside: the variable stays unset, the digits go to
    // `<var>_invalid`, and read_result keeps what the read itself said.
    let pagd = h.exec(&b, "play_and_get_digits", &args("cb_bad")).await;
    h.api(&format!("uuid_send_dtmf {a} 49*30#")).await;
    let evs = h.run(5 * S).await;
    let done = completion(&evs, &pagd.event_uuid).expect("completed");
    assert!(done.variable("cb_bad").is_none());
    assert_eq!(done.variable("cb_bad_invalid").unwrap(), "49*30");
    assert_eq!(done.variable("read_result").unwrap(), "success");

    // Digits without a terminator end at the digit timeout: "timeout", digits kept.
    let pagd = h.exec(&b, "play_and_get_digits", &args("cb_wait")).await;
    h.api(&format!("uuid_send_dtmf {a} 030123456")).await;
    let evs = h.run(10 * S).await;
    let done = completion(&evs, &pagd.event_uuid).expect("completed");
    assert_eq!(done.variable("cb_wait").unwrap(), "030123456");
    assert_eq!(done.variable("read_result").unwrap(), "timeout");
    assert!(done.variable("cb_wait_invalid").is_none());
}

#[tokio::test]
async fn endless_playback_ignores_break_runs_later_executes_nested_and_errors_on_hangup() {
    let mut h = Harness::start().await;
    let (_a, b) = h.queue_call().await;
    let endless = h.exec(&b, "endless_playback", "local_stream://moh").await;
    h.run(S).await;
    h.api(&format!("uuid_break {b} all")).await;
    let evs = h.run(5 * S).await;
    assert_eq!(on(&evs, &b), ["PLAYBACK_STOP", "PLAYBACK_START"]);
    let say = h.exec(&b, "say", "en number iterated 42").await;
    let evs = h.run(5 * S).await;
    let paths: Vec<_> = evs
        .iter()
        .filter(|e| e.is("PLAYBACK_START"))
        .map(|e| e.header("Playback-File-Path").unwrap().into_owned())
        .collect();
    assert_eq!(paths, ["file_string://digits/4.wav!digits/2.wav"]);
    assert_eq!(
        completion(&evs, &say.event_uuid)
            .unwrap()
            .header("Application-Response")
            .unwrap(),
        "_none_"
    );
    assert!(completion(&evs, &endless.event_uuid).is_none());
    h.api(&format!("uuid_kill {b}")).await;
    let evs = h.run(S).await;
    assert_eq!(
        completion(&evs, &endless.event_uuid)
            .unwrap()
            .header("Application-Response")
            .unwrap(),
        "PLAYBACK ERROR"
    );
}

#[tokio::test]
async fn park_after_bridge_decides_whether_the_caller_survives_its_agent() {
    for park_after in [false, true] {
        let mut h = Harness::start().await;
        let (_a, caller) = h.queue_call().await;
        if park_after {
            h.api(&format!("uuid_setvar {caller} park_after_bridge true"))
                .await;
        }
        let agent = "cb000003-0000-4000-8000-0000a9e4700a";
        let job = h
            .client
            .bgapi(&format!(
                "originate {{origination_uuid={agent}}}loopback/agent_answer/default &park()"
            ))
            .await
            .unwrap();
        h.run(S).await;
        job.wait().await.unwrap();
        assert_eq!(
            h.api(&format!("uuid_bridge {caller} {agent}")).await,
            format!("+OK {agent}\n")
        );
        let evs = h.run(S).await;
        let bridges: Vec<_> = evs.iter().filter(|e| e.is("CHANNEL_BRIDGE")).collect();
        assert_eq!(bridges.len(), 1);
        assert_eq!(bridges[0].unique_id().unwrap(), caller);
        assert_eq!(bridges[0].header("Bridge-B-Unique-ID").unwrap(), agent);
        h.api(&format!("uuid_kill {agent}")).await;
        let evs = h.run(S).await;
        let after = on(&evs, &caller);
        if park_after {
            assert_eq!(after, ["CHANNEL_UNBRIDGE", "CHANNEL_PARK"]);
            assert_eq!(h.api(&format!("uuid_exists {caller}")).await, "true");
            h.api(&format!("uuid_kill {caller}")).await;
            let evs = h.run(S).await;
            assert_eq!(
                on(&evs, &caller),
                [
                    "CHANNEL_HANGUP",
                    "CHANNEL_UNPARK",
                    "CHANNEL_HANGUP_COMPLETE",
                    "CHANNEL_DESTROY"
                ]
            );
        } else {
            assert_eq!(&after[..2], ["CHANNEL_UNBRIDGE", "CHANNEL_HANGUP"]);
            let hangup = evs
                .iter()
                .find(|e| {
                    e.is("CHANNEL_HANGUP") && e.unique_id().as_deref() == Some(caller.as_str())
                })
                .unwrap();
            assert_eq!(
                hangup.variable("bridge_hangup_cause").unwrap(),
                "NORMAL_CLEARING"
            );
            assert_eq!(h.api(&format!("uuid_exists {caller}")).await, "false");
            assert_eq!(h.api("show channels").await, "\n0 total.\n");
        }
    }
}

#[tokio::test]
async fn failed_originates_report_only_in_the_job_body() {
    let mut h = Harness::start().await;
    for (dial, cause) in [
        ("error/user_busy", "USER_BUSY"),
        ("user/9999", "SUBSCRIBER_ABSENT"),
        ("user/1000", "USER_NOT_REGISTERED"),
    ] {
        let job = h
            .client
            .bgapi(&format!("originate {dial} &park()"))
            .await
            .unwrap();
        let evs = h.run(S).await;
        let err = job.wait().await.unwrap_err().to_string();
        assert!(err.ends_with(&format!("-ERR {cause}")), "{dial}: {err}");
        assert!(
            evs.iter()
                .all(|e| !e.name().unwrap().starts_with("CHANNEL_")),
            "{dial} created channel events"
        );
    }
    // A blocking api originate answers with the same text.
    assert_eq!(
        h.api("originate error/user_busy &park").await,
        "-ERR USER_BUSY"
    );
}

#[tokio::test]
async fn originate_timeout_fires_early_with_no_answer() {
    let mut h = Harness::start().await;
    let job = h
        .client
        .bgapi("originate {originate_timeout=5}loopback/agent_noanswer/default &park()")
        .await
        .unwrap();
    let evs = h.run(Duration::from_millis(4100)).await;
    assert!(evs.iter().all(|e| !e.is("CHANNEL_HANGUP")));
    let evs = h.run(Duration::from_millis(100)).await;
    let hangups: Vec<_> = evs.iter().filter(|e| e.is("CHANNEL_HANGUP")).collect();
    assert_eq!(hangups.len(), 2);
    assert!(hangups
        .iter()
        .all(|e| e.header("Hangup-Cause").unwrap() == "NO_ANSWER"));
    assert_eq!(hangups[0].variable("hangup_cause_q850").unwrap(), "19");
    assert!(job
        .wait()
        .await
        .unwrap_err()
        .to_string()
        .ends_with("-ERR NO_ANSWER"));
}

#[tokio::test]
async fn replies_match_freeswitch_texts() {
    let h = Harness::start().await;
    let c = &h.client;
    let text = |r: callbackd::esl::Reply| r.text();
    assert_eq!(
        text(c.command("nosuchverb", &[], None).await.unwrap()),
        "-ERR command not found"
    );
    assert_eq!(
        h.api("nosuchcommand").await,
        "-ERR nosuchcommand Command not found!"
    );
    assert_eq!(
        c.filter("Event-Name", "CHANNEL_PARK").await.unwrap(),
        "+OK filter added. [Event-Name]=[CHANNEL_PARK]"
    );
    assert_eq!(
        c.filter_delete("Event-Name", Some("NOSUCH")).await.unwrap(),
        "+OK filter deleted. [Event-Name][NOSUCH]"
    );
    assert_eq!(
        c.filter_delete("all", None).await.unwrap(),
        "+OK filter deleted. [all][]"
    );
    assert_eq!(h.api("uuid_exists nosuch").await, "false");
    assert_eq!(h.api("show channels as json").await, "{\"row_count\":0}");
    assert!(h.api("status").await.starts_with("UP 0 years, 0 days"));
    assert_eq!(
        text(
            c.command(
                "sendmsg nosuch",
                &[("call-command", "execute"), ("execute-app-name", "park")],
                None
            )
            .await
            .unwrap()
        ),
        "-ERR invalid session id [nosuch]"
    );
    assert_eq!(
        h.api("hupall NORMAL_CLEARING").await,
        "+OK hangup all channels with cause NORMAL_CLEARING\n"
    );
}

#[tokio::test]
async fn exit_and_bad_auth_end_with_the_disconnect_notice() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start().await;
    for (script, reply) in [
        ("auth ClueCon\n\nexit\n\n", "Reply-Text: +OK bye\n"),
        ("auth wrong\n\n", "Reply-Text: -ERR invalid\n"),
    ] {
        let mut sock = tokio::net::TcpStream::connect(h.switch.addr())
            .await
            .unwrap();
        sock.write_all(script.as_bytes()).await.unwrap();
        let mut all = String::new();
        tokio::time::timeout(S, sock.read_to_string(&mut all))
            .await
            .expect("the switch closes the socket")
            .unwrap();
        assert!(all.starts_with("Content-Type: auth/request\n\n"), "{all}");
        assert!(all.contains(reply), "{all}");
        assert!(
            all.ends_with(
                "Content-Type: text/disconnect-notice\nContent-Length: 67\n\n\
                 Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
            ),
            "{all}"
        );
    }
}

#[tokio::test]
async fn json_and_xml_subscriptions_get_events_with_bodies() {
    use callbackd::esl::{Client, ClientConfig, Delivery, EventFormat};
    let mut h = Harness::start().await;
    for format in [EventFormat::Json, EventFormat::Xml] {
        let mut config = ClientConfig::new(h.switch.addr().to_string(), "ClueCon");
        config.events = vec!["BACKGROUND_JOB".into(), "DTMF".into()];
        config.format = format;
        let (client, mut rx) = Client::start(config);
        assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
        let job = client.bgapi_with_job_uuid("status", "job-1").await.unwrap();
        assert!(job.wait().await.unwrap().starts_with("UP "), "{format:?}");
        let (a, _b) = h.queue_call().await;
        h.api(&format!("uuid_send_dtmf {a} #")).await;
        h.run(S).await;
        let dtmf = loop {
            match rx.recv().await {
                Some(Delivery::Event(e)) if e.is("DTMF") => break e,
                Some(_) => continue,
                None => panic!("closed"),
            }
        };
        assert_eq!(dtmf.header("DTMF-Digit").unwrap(), "#", "{format:?}");
    }
}

#[tokio::test]
async fn event_lock_keeps_later_messages_out_of_a_running_application() {
    for locked in [false, true] {
        let mut h = Harness::start().await;
        let (_a, b) = h.queue_call().await;
        let sleep = h.client.execute(&b, "sleep", "5000", locked).await.unwrap();
        let say = h.exec(&b, "say", "en number iterated 7").await;
        let evs = h.run(2 * S).await;
        // Unlocked, sleep polls for messages and the say runs inside it; locked, it waits.
        assert_eq!(completion(&evs, &say.event_uuid).is_some(), !locked);
        let evs = h.run(5 * S).await;
        assert!(completion(&evs, &sleep.event_uuid).is_some());
        if locked {
            assert!(completion(&evs, &say.event_uuid).is_some());
        }
    }
}

#[tokio::test]
async fn nixevent_and_noevents_stop_delivery() {
    let mut h = Harness::start().await;
    let c = &h.client;
    assert_eq!(c.unsubscribe(&["ALL"]).await.unwrap(), "+OK events nixed");
    assert_eq!(
        c.subscribe(&["CHANNEL_PARK"]).await.unwrap(),
        "+OK event listener enabled plain"
    );
    h.client
        .bgapi("originate loopback/cbq/default &park()")
        .await
        .unwrap();
    let evs = h.run(S).await;
    assert!(!evs.is_empty() && evs.iter().all(|e| e.is("CHANNEL_PARK")));
    assert_eq!(
        h.client.noevents().await.unwrap(),
        "+OK no longer listening for events"
    );
    h.api("hupall NORMAL_CLEARING").await;
    assert!(h.run(S).await.is_empty());
}

#[tokio::test]
async fn blocking_api_originate_holds_later_commands_until_it_answers() {
    let agent = Party::answers_after(2 * S);
    let h = Harness::with(Scenario::default().party("user/1001", agent)).await;
    let c1 = h.client.clone();
    let originate = tokio::spawn(async move {
        c1.api("originate {origination_uuid=cb000008-0000-4000-8000-000000000001}user/1001 &park()")
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let c2 = h.client.clone();
    let status = tokio::spawn(async move {
        c2.api("uuid_exists cb000008-0000-4000-8000-000000000001")
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!originate.is_finished() && !status.is_finished());
    h.switch.advance(3 * S).await.unwrap();
    assert_eq!(
        originate.await.unwrap().unwrap(),
        "+OK cb000008-0000-4000-8000-000000000001\n"
    );
    // Answered in order, after the originate: by then the channel exists.
    assert_eq!(status.await.unwrap().unwrap(), "true");
}

#[tokio::test]
async fn a_listener_that_stops_reading_is_dropped_not_buffered_forever() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let switch = callbackd::sim::Switch::start(callbackd::sim::SimConfig {
        clock: callbackd::sim::ClockMode::Manual,
        listener_queue: 100,
        ..callbackd::sim::SimConfig::default()
    })
    .await
    .unwrap();
    let mut sock = tokio::net::TcpStream::connect(switch.addr()).await.unwrap();
    sock.write_all(b"auth ClueCon\n\nevent plain ALL\n\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Far more events than the queue and the socket buffers hold, with nobody reading.
    for i in 0..200 {
        let caller = callbackd::sim::Caller::number(&format!("+1{i:010}")).press(S, "1234567890");
        switch.add_caller(caller).unwrap();
    }
    for _ in 0..40 {
        switch.advance(Duration::from_millis(100)).await.unwrap();
    }
    // The switch hung up on the listener: reading now drains what was sent, then EOF.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut rest))
        .await
        .expect("the switch closed the connection")
        .unwrap();
    let received = rest
        .windows(b"text/event-plain".len())
        .filter(|w| *w == b"text/event-plain")
        .count() as u64;
    assert!(received < switch.events_emitted().await.unwrap());
}

#[tokio::test]
async fn originate_to_an_extension_and_transfers_route_through_the_dialplan() {
    let customer = Party::answers_after(S);
    let mut h =
        Harness::with(Scenario::default().party("sofia/gateway/carrier/+4930123", customer)).await;
    let leg = "cb000008-0000-4000-8000-000000000002";
    let job = h
        .client
        .bgapi(&format!(
            "originate {{origination_uuid={leg}}}sofia/gateway/carrier/+4930123 cbq XML default"
        ))
        .await
        .unwrap();
    let evs = h.run(2 * S).await;
    assert_eq!(job.wait().await.unwrap(), format!("+OK {leg}\n"));
    let park = evs.iter().find(|e| e.is("CHANNEL_PARK")).unwrap();
    assert_eq!(park.unique_id().unwrap(), leg);
    assert_eq!(park.variable("callbackd_queue").unwrap(), "support");
    assert!(on(&evs, leg).iter().all(|e| !e.contains("transfer")));

    assert_eq!(
        h.api(&format!("uuid_transfer {leg} nosuch XML default"))
            .await,
        "+OK\n"
    );
    let evs = h.run(S).await;
    let hangup = evs.iter().find(|e| e.is("CHANNEL_HANGUP")).unwrap();
    assert_eq!(
        hangup.header("Hangup-Cause").unwrap(),
        "NO_ROUTE_DESTINATION"
    );
    assert!(hangup
        .header("Caller-Transfer-Source")
        .unwrap()
        .ends_with(":bl_xfer:nosuch/default/xml"));
}

#[tokio::test]
async fn uuid_commands_answer_usage_and_missing_channels_like_mod_commands() {
    let h = Harness::start().await;
    for (cmd, reply) in [
        ("uuid_kill", "-USAGE: <uuid> [cause]"),
        ("uuid_getvar nosuch", "-USAGE: <uuid> <var>"),
        ("uuid_kill nosuch", "-ERR No such channel!"),
        ("uuid_getvar nosuch x", "-ERR No such channel!"),
        ("uuid_break nosuch all", "-ERR No such channel!"),
        ("uuid_transfer nosuch park", "-ERR No such channel!"),
        ("uuid_bridge nosuch other", "-ERR Invalid uuid"),
        ("uuid_broadcast nosuch x.wav", "-ERR invalid uuid"),
        ("uuid_send_dtmf nosuch 1", "-ERR Cannot locate session!"),
        ("uuid_recv_dtmf nosuch 1", "-ERR Cannot locate session!"),
    ] {
        assert_eq!(h.api(cmd).await.trim_end(), reply, "{cmd}");
    }
}

#[tokio::test]
async fn transferring_both_bridged_legs_keeps_them_alive_and_one_leg_drops_the_other() {
    for both in [true, false] {
        let mut h = Harness::start().await;
        let (_a, caller) = h.queue_call().await;
        let agent = "cb000003-0000-4000-8000-0000a9e4700f";
        let job = h
            .client
            .bgapi(&format!(
                "originate {{origination_uuid={agent}}}loopback/agent_answer/default &park()"
            ))
            .await
            .unwrap();
        h.run(S).await;
        job.wait().await.unwrap();
        h.api(&format!("uuid_bridge {caller} {agent}")).await;
        h.run(S).await;
        let which = if both { "-both" } else { "-bleg" };
        assert_eq!(
            h.api(&format!("uuid_transfer {caller} {which} park inline"))
                .await,
            "+OK\n"
        );
        let evs = h.run(S).await;
        assert_eq!(evs.iter().filter(|e| e.is("CHANNEL_UNBRIDGE")).count(), 1);
        let parked: Vec<_> = evs
            .iter()
            .filter(|e| e.is("CHANNEL_PARK"))
            .map(|e| e.unique_id().unwrap().into_owned())
            .collect();
        if both {
            assert_eq!(parked, [caller.clone(), agent.to_owned()]);
        } else {
            // The agent moves on; the caller, left alone without park_after_bridge, hangs up.
            assert_eq!(parked, [agent.to_owned()]);
            assert_eq!(h.api(&format!("uuid_exists {caller}")).await, "false");
        }
    }
}

#[tokio::test]
async fn the_leg_a_bridge_app_dialed_hangs_up_with_its_caller() {
    let mut h = Harness::start().await;
    let cust = "cb000003-0000-4000-8000-00000c0570c1";
    let job = h
        .client
        .bgapi(&format!(
            "originate {{origination_uuid={cust}}}loopback/cust_answer/default &bridge(loopback/agent_answer/default)"
        ))
        .await
        .unwrap();
    let evs = h.run(S).await;
    job.wait().await.unwrap();
    let bridge = evs.iter().find(|e| e.is("CHANNEL_BRIDGE")).unwrap();
    assert_eq!(bridge.unique_id().unwrap(), cust);
    assert_eq!(bridge.variable("originate_disposition").unwrap(), "SUCCESS");
    h.api(&format!("uuid_kill {cust}")).await;
    h.run(S).await;
    assert_eq!(h.api("show channels").await, "\n0 total.\n");
}

#[tokio::test]
async fn sendevent_fires_any_event_type_with_the_senders_headers() {
    let mut h = Harness::start().await;
    let reply = h
        .client
        .sendevent(
            "NOTIFY",
            &[("profile", "internal"), ("event-string", "check-sync")],
        )
        .await
        .unwrap();
    let evs = h.run(S).await;
    let ev = evs.iter().find(|e| e.is("NOTIFY")).expect("fired");
    assert_eq!(ev.header("profile").unwrap(), "internal");
    assert_eq!(ev.header("Command").unwrap(), "sendevent NOTIFY");
    assert_eq!(reply, format!("+OK {}", ev.header("Event-UUID").unwrap()));
}
