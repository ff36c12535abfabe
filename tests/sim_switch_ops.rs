//! The daemon's typed switch operations (`callbackd::switch`) against the simulator: the
//! commands it really sends, answered the way the daemon expects.
//!
//! One queue call from arrival to a bridged agent, plus a failed originate.

mod support;

use std::time::Duration;

use callbackd::sim::{Caller, Party, Scenario};
use callbackd::switch::{
    DialString, FreeSwitch, HangupCause, MediaSource, Originate, Pbx, SwitchError, VarName,
    VarValue,
};
use support::harness::Harness;

const S: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_queue_call_from_hold_music_to_a_bridged_agent() {
    let scenario = Scenario::default()
        .caller(Caller::number("+14155550123").press(3 * S, "2"))
        .party("user/1001", Party::answers_after(2 * S));
    let mut h = Harness::with(scenario).await;
    let fs = FreeSwitch::new(h.client.clone());
    h.run(S).await;

    let rows = fs.calls().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].parked);
    assert_eq!(rows[0].caller_id_number.as_deref(), Some("+14155550123"));
    let caller = rows[0].id.clone();
    let queue = VarName::new("callbackd_queue").unwrap();
    assert_eq!(
        fs.tag(&caller, &queue).await.unwrap().as_deref(),
        Some("support")
    );

    // Hold music with barge-in on 2: the caller's key ends it with FILE PLAYED.
    fs.set_playback_terminators(&caller, &VarValue::new("2").unwrap())
        .await
        .unwrap();
    let moh = MediaSource::new("local_stream://moh").unwrap();
    let playing = tokio::spawn({
        let (fs, caller) = (fs.clone(), caller.clone());
        async move { fs.play(&caller, &moh).await }
    });
    // Time moves only once the music plays, or the key would come before it.
    while !h.events().await.iter().any(|e| e.is("CHANNEL_EXECUTE")) {}
    h.run(3 * S).await;
    let played = playing.await.unwrap();
    assert_eq!(played.unwrap().ended_by, Some('2'));

    // Agent first, then the bridge; the caller goes when the agent hangs up.
    let mut call = Originate::new(DialString::new("user/1001").unwrap());
    call.caller_id_number = Some(VarValue::new("+14155550123").unwrap());
    call.timeout = Some(Duration::from_secs(30));
    let pending = fs.originate(&call).await.unwrap();
    h.run(3 * S).await;
    let agent = pending.wait().await.unwrap();
    assert_eq!(agent, call.id);
    fs.bridge(&caller, &agent).await.unwrap();
    let evs = h.run(S).await;
    assert!(evs.iter().any(|e| e.is("CHANNEL_BRIDGE")));
    fs.hang_up(&agent, &HangupCause::new("NORMAL_CLEARING").unwrap())
        .await
        .unwrap();
    h.run(S).await;
    assert!(fs.calls().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_originate_is_a_call_failure_with_the_cause() {
    let mut h = Harness::start().await;
    let fs = FreeSwitch::new(h.client.clone());
    let pending = fs
        .originate(&Originate::new(DialString::new("user/9999").unwrap()))
        .await
        .unwrap();
    h.run(S).await;
    match pending.wait().await {
        Err(SwitchError::CallFailed(cause)) => assert_eq!(cause, "SUBSCRIBER_ABSENT"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_switch_answers_api_commands_late_and_in_order() {
    let mut h = Harness::start().await;
    h.switch.slow_api(2 * S, 10 * S).await.unwrap();
    let (a, b) = (h.client.clone(), h.client.clone());
    let status = tokio::spawn(async move { a.api("status").await.unwrap() });
    h.events().await;
    let second = tokio::spawn(async move { b.api("status").await.unwrap() });
    h.run(S).await;
    assert!(!status.is_finished(), "answered before its delay");
    h.run(S).await;
    assert!(
        !second.is_finished(),
        "not held behind the command before it"
    );
    h.run(2 * S).await;
    assert!(status.await.unwrap().contains("UP"));
    assert!(second.await.unwrap().contains("UP"));
    // Once the slow spell is over, replies are immediate again.
    h.run(10 * S).await;
    assert!(h.api("status").await.contains("UP"));
}
