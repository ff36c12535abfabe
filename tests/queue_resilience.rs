//! The queue survives its daemons: a restart mid-queue, and two daemons sharing one Redis.
//!
//! Redis is the one source of truth, so whatever a daemon knew is found again there.

mod common;
mod engine;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::{Caller, Party};
use callbackd::store::EventKind;
use engine::{base_config, field, until, until_some, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_finds_its_callers_and_keeps_their_order() {
    let answers =
        Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(2));
    let rig = Rig::start(&base_config(""), &[("user/1002", answers)]).await;
    let first = rig.daemon("d1");
    rig.call(Caller::number("+4930100001"));
    rig.call(
        Caller::number("+4930100002")
            .at(Duration::from_secs(1))
            .hang_up_after(Duration::from_secs(8)),
    );
    rig.call(Caller::number("+4930100003").at(Duration::from_secs(2)));
    rig.wait_for(EventKind::Entered, 3).await;
    first.kill().await;
    // While no daemon runs: caller 2 hangs up, caller 4 arrives and parks.
    rig.call(Caller::number("+4930100004").at(Duration::from_secs(1)));
    rig.hung_up("+4930100002").await;
    rig.entry_of("+4930100004").await;
    let second = rig.daemon("d2");
    rig.set_agent("bob", AgentState::Available).await;
    let connected = rig.wait_for(EventKind::Connected, 3).await;
    let mut want = Vec::new();
    for n in ["+4930100001", "+4930100003", "+4930100004"] {
        want.push(rig.entry_of(n).await);
    }
    let order: Vec<&str> = connected.iter().map(|e| field(e, "entry")).collect();
    assert_eq!(order, want, "served in arrival order across the restart");
    let abandoned = rig.events_of(EventKind::Abandoned).await;
    assert_eq!(abandoned.len(), 1);
    assert_eq!(
        field(&abandoned[0], "entry"),
        rig.entry_of("+4930100002").await
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_redis_serve_200_calls_without_double_offers() {
    const CALLS: usize = 200;
    const AGENTS: usize = 10;
    let mut text = base_config("");
    // Replace the three default agents with ten.
    text.truncate(text.find("[[agents]]").unwrap());
    let mut parties = Vec::new();
    let dials: Vec<String> = (1..=AGENTS).map(|i| format!("user/{}", 2000 + i)).collect();
    for (i, dial) in dials.iter().enumerate() {
        text.push_str(&format!(
            "[[agents]]\nid = \"agent{i}\"\ndisplay_name = \"Agent {i}\"\ncontact = \"{dial}\"\nqueues = [{{ queue = \"support\" }}]\n"
        ));
    }
    for dial in &dials {
        parties.push((
            dial.as_str(),
            Party::answers_after(Duration::from_millis(500)).hang_up_after(Duration::from_secs(2)),
        ));
    }
    let rig = Rig::start(&text, &parties).await;
    for i in 0..AGENTS {
        rig.set_agent(&format!("agent{i}"), AgentState::Available)
            .await;
    }
    let a = rig.daemon("a");
    let b = rig.daemon("b");
    until("both daemons listen", || async {
        rig.sim.listeners_for("callbackd::agent").await.unwrap() == 2
    })
    .await;
    for n in 0..CALLS {
        rig.call(
            Caller::number(&format!("+49301{n:06}")).at(Duration::from_millis(100 * n as u64)),
        );
    }
    // Under load an agent may hang up before their bridge (they talk 0.4 s of real time):
    // the caller then waits again and is connected once more. Every caller gets through.
    until("every caller is connected", || async {
        let connected = rig.events_of(EventKind::Connected).await;
        connected
            .iter()
            .map(|e| field(e, "entry").to_owned())
            .collect::<HashSet<_>>()
            .len()
            == CALLS
    })
    .await;

    // An offer withdrawn (claimed for an agent the other daemon had just booked) rang
    // nobody: what counts is the offers that stood. No entry ever had two at once.
    let events = rig.events().await;
    let mut standing: HashMap<&str, bool> = HashMap::new();
    for e in &events {
        let entry = field(e, "entry");
        match e.kind {
            EventKind::Offered => {
                assert!(
                    !standing.get(entry).copied().unwrap_or(false),
                    "{entry} offered twice"
                );
                standing.insert(entry, true);
            }
            EventKind::OfferWithdrawn | EventKind::AgentNoAnswer | EventKind::Connected => {
                standing.insert(entry, false);
            }
            _ => {}
        }
    }
    // A second connection follows only a bridge that failed.
    for entry in standing.keys() {
        let of = |kind: EventKind| {
            events
                .iter()
                .filter(|e| e.kind == kind && field(e, "entry") == *entry)
                .filter(|e| {
                    kind != EventKind::AgentNoAnswer || field(e, "cause") == "bridge_failed"
                })
                .count()
        };
        assert_eq!(
            of(EventKind::Connected),
            1 + of(EventKind::AgentNoAnswer),
            "{entry} connected again without a failed bridge"
        );
    }

    // No agent was booked twice: between two offers to an agent came that agent's answer.
    // Withdrawn offers booked nobody.
    let mut last_offer: HashMap<&str, usize> = HashMap::new();
    let mut withdrawn: HashSet<usize> = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            EventKind::Offered => {
                last_offer.insert(field(e, "entry"), i);
            }
            EventKind::OfferWithdrawn => {
                withdrawn.insert(last_offer[field(e, "entry")]);
            }
            _ => {}
        }
    }
    let mut busy: HashMap<&str, bool> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            EventKind::Offered if !withdrawn.contains(&i) => {
                let agent = field(e, "agents");
                assert!(
                    !busy.get(agent).copied().unwrap_or(false),
                    "{agent} double-booked"
                );
                busy.insert(agent, true);
            }
            // Their answer, or the end of an offer they missed.
            EventKind::Connected | EventKind::AgentNoAnswer => {
                busy.insert(field(e, "agent"), false);
            }
            _ => {}
        }
    }
    // And the switch bridged each caller once.
    let callers = until_some("every caller is bridged", || async {
        let callers = rig.callers().await;
        (callers.len() == CALLS && callers.values().all(|r| !r.bridges.is_empty()))
            .then_some(callers)
    })
    .await;
    for (number, record) in &callers {
        assert_eq!(record.bridges.len(), 1, "{number}: {:?}", record.bridges);
    }
    a.stop().await;
    b.stop().await;
}

/// How many times the caller with `number` has had hold music started.
async fn hold_music_starts(rig: &Rig, number: &str) -> usize {
    rig.callers().await.get(number).map_or(0, |r| {
        r.media
            .iter()
            .filter(|m| *m == "local_stream://moh")
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_plays_to_a_caller_and_another_takes_over_when_it_dies() {
    let answers =
        Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(2));
    let rig = Rig::start(&base_config(""), &[("user/1001", answers)]).await;
    let first = rig.daemon("d1");
    rig.call(Caller::number("+4930100001"));
    rig.heard("+4930100001", "local_stream://moh").await;
    // A daemon that starts later resyncs with the switch: the caller stays d1's.
    let second = rig.daemon("d2");
    until("both daemons listen", || async {
        rig.sim.listeners_for("callbackd::agent").await.unwrap() == 2
    })
    .await;
    // Absence takes a while to show: two leases and more, in which d2 checks often.
    tokio::time::sleep(engine::sim_secs(35.0)).await;
    assert_eq!(
        hold_music_starts(&rig, "+4930100001").await,
        1,
        "d2 played too"
    );
    first.kill().await;
    until("d2 takes the caller over", || async {
        hold_music_starts(&rig, "+4930100001").await == 2
    })
    .await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::Connected, 1).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_daemon_hands_its_callers_to_the_daemon_staying() {
    let rig = Rig::start(&base_config(""), &[]).await;
    let mut first = rig.daemon("d1");
    rig.call(Caller::number("+4930100001"));
    rig.heard("+4930100001", "local_stream://moh").await;
    let second = rig.daemon("d2");
    first.handle().await.drain().await.unwrap();
    until("d2 takes the caller over", || async {
        hold_music_starts(&rig, "+4930100001").await == 2
    })
    .await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_ends_while_the_switch_is_out_of_reach_frees_its_agent() {
    let talks = Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(3));
    let rig = Rig::start(&base_config(""), &[("user/1001", talks)]).await;
    let daemon = rig.daemon("d1");
    rig.set_agent("alice", AgentState::Available).await;
    rig.call(Caller::number("+4930100001"));
    rig.wait_for(EventKind::Connected, 1).await;
    // The event socket is cut; the call ends before the daemon is back.
    rig.sim.outage(Duration::from_secs(10)).await.unwrap();
    rig.hung_up("+4930100001").await;
    rig.call(Caller::number("+4930100002"));
    rig.wait_for(EventKind::Connected, 2).await;
    daemon.stop().await;
}
