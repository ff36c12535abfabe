//! `callbackd sim` as a process: it listens, authenticates and answers like an idle
//! FreeSWITCH (an unscripted `user/` fails with SUBSCRIBER_ABSENT).
//!
//! Runs the built binary, so it also proves the subcommand is wired into the CLI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use callbackd::esl::{Client, ClientConfig, Delivery};

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn idle_simulator_process_answers_commands() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_callbackd"))
            .args(["sim", "--listen", "127.0.0.1:0", "--password", "s3cret"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let line = BufReader::new(stderr).lines().next().unwrap().unwrap();
    let addr = line.rsplit(' ').next().unwrap().to_owned();
    assert!(line.starts_with("callbackd sim: listening on "), "{line}");

    let mut config = ClientConfig::new(addr, "s3cret");
    // bgapi results are events: without this subscription they never arrive.
    config.events = vec!["BACKGROUND_JOB".into()];
    let (client, mut rx) = Client::start(config);
    assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
    assert!(client.api("status").await.unwrap().starts_with("UP "));
    let err = client
        .bgapi("originate user/1234 &park()")
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("-ERR SUBSCRIBER_ABSENT"), "{err}");
}
