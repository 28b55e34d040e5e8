//! The agent's IPMI client against real OpenIPMI `ipmi_sim` BMCs on loopback: device id,
//! chassis status, every power action as the simulator records it, FRU, SDR, SOL, bad
//! credentials, an unreachable BMC, and 1,000 operations that leave no session behind.

#![allow(clippy::unwrap_used)]

mod sim;

use plinth_agent::ipmi::commands::ChassisControl;
use plinth_agent::ipmi::{
    CipherSuite, Ipmi, IpmiError, IpmiSettings, Password, Session, Target, Timing,
};
use sim::{SimBmc, wait_until};
use std::net::SocketAddr;
use std::time::Duration;

fn target(addr: SocketAddr, user: &str, password: &str) -> Target {
    Target {
        addr,
        username: user.into(),
        password: Password::new(password),
        suite: None,
    }
}

fn admin(sim: &SimBmc) -> Target {
    target(sim.addr(), "admin", "password")
}

fn settings() -> IpmiSettings {
    IpmiSettings {
        timing: Timing {
            first_wait: Duration::from_millis(500),
            attempts: 4,
            deadline: Duration::from_secs(8),
        },
        ..IpmiSettings::default()
    }
}

/// How many sessions the BMC has open, asked over a session of its own (which counts).
async fn active_sessions(t: &Target) -> u8 {
    let mut s = Session::open(t, settings().timing).await.unwrap();
    let counts = s.session_counts().await.unwrap();
    s.close().await;
    counts.active
}

#[tokio::test]
async fn device_id_chassis_fru_and_sdr() {
    let sim = SimBmc::start();
    let ipmi = Ipmi::new(settings());
    let t = admin(&sim);
    let id = ipmi.run(&t, |s| Box::pin(s.device_id())).await.unwrap();
    // mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 in the simulator's bmc.emu:
    // device id 0, revision 0x23 (low nibble 3), firmware 9.08.
    assert_eq!(id.device_id, 0);
    assert_eq!(id.device_revision, 3);
    assert_eq!(id.firmware, "9.08");
    assert_eq!(id.manufacturer_id, 0x1291);
    assert_eq!(id.product_id, 0x0f02);
    assert_eq!(id.ipmi_version, "2.0");
    let suite = ipmi.run(&t, |s| Box::pin(async { Ok(s.suite()) })).await;
    assert_eq!(
        suite.unwrap(),
        CipherSuite::Suite3,
        "ipmi_sim refuses 17; 3 follows"
    );
    let status = ipmi
        .run(&t, |s| Box::pin(s.chassis_status()))
        .await
        .unwrap();
    assert!(!status.power_on, "the simulator starts powered off");
    let fru = ipmi.run(&t, |s| Box::pin(s.fru(0))).await.unwrap();
    assert_eq!(fru.serial(), Some("PRODUCT-SN-0001"));
    assert_eq!(fru.model(), Some("SimServer 1000"));
    assert_eq!(fru.manufacturer(), Some("Acme"));
    assert_eq!(fru.board_serial.as_deref(), Some("BOARD-SN-0001"));
    let sdr = ipmi.run(&t, |s| Box::pin(s.sdr_records())).await.unwrap();
    assert!(
        sdr.iter()
            .any(|r| r.name.as_deref() == Some("MB Temp") && r.sensor_number == Some(1)),
        "{sdr:?}"
    );
    assert_eq!(
        ipmi.open_sessions().await,
        1,
        "one session served all of it"
    );
    ipmi.close_all().await;
    assert_eq!(ipmi.open_sessions().await, 0);
    assert_eq!(active_sessions(&t).await, 1, "only the counting session");
}

#[tokio::test]
async fn each_power_action_reaches_the_chassis() {
    let sim = SimBmc::start();
    let ipmi = Ipmi::new(settings());
    let t = admin(&sim);
    let power_on = async || {
        ipmi.run(&t, |s| Box::pin(s.chassis_status()))
            .await
            .unwrap()
            .power_on
    };
    // (action, the line the simulator's chassis helper records, power after)
    let cases = [
        (ChassisControl::PowerUp, "power 1", true),
        (ChassisControl::HardReset, "reset 1", true),
        (ChassisControl::SoftShutdown, "shutdown 1", false),
        (ChassisControl::PowerUp, "power 1", true),
        (ChassisControl::PowerDown, "power 0", false),
    ];
    for (action, line, on) in cases {
        let before = sim.actions().len();
        ipmi.run(&t, |s| Box::pin(s.chassis_control(action)))
            .await
            .unwrap();
        let actions = sim.actions();
        assert_eq!(
            actions.get(before).map(String::as_str),
            Some(line),
            "{action:?}: {actions:?}"
        );
        assert_eq!(power_on().await, on, "{action:?}");
    }
    // A cycle from on: off, then on again a moment later (the simulator's own timer).
    ipmi.run(&t, |s| Box::pin(s.chassis_control(ChassisControl::PowerUp)))
        .await
        .unwrap();
    let before = sim.actions().len();
    ipmi.run(&t, |s| {
        Box::pin(s.chassis_control(ChassisControl::PowerCycle))
    })
    .await
    .unwrap();
    wait_until("the cycle's power on", Duration::from_secs(20), || async {
        sim.actions()[before..] == ["power 0", "power 1"]
    })
    .await;
    assert_eq!(sim.power().as_deref(), Some("1"));
    ipmi.close_all().await;
}

#[tokio::test]
async fn bad_credentials_are_named_and_leave_no_session() {
    let sim = SimBmc::start();
    let timing = settings().timing;
    // ipmi_sim grants ADMINISTRATOR even to its operator user (ipmitool -L ADMINISTRATOR -U
    // oper gets it too), so "privilege too low" is covered by session.rs's unit tests.
    type Expect = fn(&IpmiError) -> bool;
    let cases: [(&str, &str, &str, Expect); 2] = [
        (
            "wrong password",
            "admin",
            "wrong",
            |e| matches!(e, IpmiError::BadCredentials(m) if m.contains("password")),
        ),
        ("unknown user", "nobody", "password", |e| {
            matches!(e, IpmiError::BadCredentials(_))
        }),
    ];
    for (label, user, password, expected) in cases {
        for _ in 0..20 {
            let err = Session::open(&target(sim.addr(), user, password), timing)
                .await
                .expect_err(label);
            assert!(expected(&err), "{label}: {err}");
        }
    }
    assert_eq!(
        active_sessions(&admin(&sim)).await,
        1,
        "40 refused opens left nothing open"
    );
}

#[tokio::test]
async fn an_unreachable_bmc_is_an_error_within_the_deadline() {
    // Nothing listens there: no simulator was started on this address.
    let addr = SocketAddr::new(sim::loopback_address(), 623);
    let mut s = settings();
    s.timing = Timing {
        first_wait: Duration::from_millis(200),
        attempts: 3,
        deadline: Duration::from_secs(1),
    };
    let ipmi = Ipmi::new(s);
    let t = target(addr, "admin", "password");
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        ipmi.run(&t, |s| Box::pin(s.chassis_status())),
    )
    .await
    .expect("the operation ends on its own deadline");
    let err = outcome.expect_err("nobody answers");
    assert!(matches!(err, IpmiError::NoResponse { .. }), "{err}");
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert_eq!(ipmi.open_sessions().await, 0);
}

#[tokio::test]
async fn a_thousand_operations_leave_no_session_open() {
    let sim = SimBmc::start();
    let ipmi = Ipmi::new(settings());
    let t = admin(&sim);
    for i in 0..1000 {
        // Every tenth operation closes the session first: 100 opens and closes among them.
        if i % 10 == 0 {
            ipmi.forget(t.addr).await;
        }
        let outcome = if i % 2 == 0 {
            ipmi.run(&t, |s| Box::pin(s.chassis_status()))
                .await
                .map(drop)
        } else {
            ipmi.run(&t, |s| Box::pin(s.device_id())).await.map(drop)
        };
        if let Err(err) = outcome {
            panic!("operation {i}: {err}");
        }
    }
    let counts = ipmi
        .run(&t, |s| Box::pin(s.session_counts()))
        .await
        .unwrap();
    assert_eq!(counts.active, 1, "only the pooled session: {counts:?}");
    ipmi.close_all().await;
    assert_eq!(active_sessions(&t).await, 1, "only the counting session");
}

#[tokio::test]
async fn serial_over_lan_round_trips() {
    let sim = SimBmc::start();
    let ipmi = Ipmi::new(settings());
    let t = admin(&sim);
    ipmi.run(&t, |s| Box::pin(s.sol_activate())).await.unwrap();
    let mut seen = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("login:") {
        assert!(
            tokio::time::Instant::now() < until,
            "no login prompt: {seen:?}"
        );
        seen.extend(
            ipmi.run(&t, |s| Box::pin(s.sol_recv(Duration::from_millis(200))))
                .await
                .unwrap(),
        );
    }
    seen.clear();
    seen.extend(
        ipmi.run(&t, |s| Box::pin(s.sol_send(b"root\r")))
            .await
            .unwrap(),
    );
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("[echo:ROOT\r]") {
        assert!(tokio::time::Instant::now() < until, "no echo: {seen:?}");
        seen.extend(
            ipmi.run(&t, |s| Box::pin(s.sol_recv(Duration::from_millis(200))))
                .await
                .unwrap(),
        );
    }
    ipmi.run(&t, |s| Box::pin(s.sol_deactivate()))
        .await
        .unwrap();
    // Activated again on the same session, keys still get through (sequence numbers go on).
    ipmi.run(&t, |s| Box::pin(s.sol_activate())).await.unwrap();
    seen.clear();
    seen.extend(
        ipmi.run(&t, |s| Box::pin(s.sol_send(b"again\r")))
            .await
            .unwrap(),
    );
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("[echo:AGAIN\r]") {
        assert!(
            tokio::time::Instant::now() < until,
            "no echo after reactivation: {seen:?}"
        );
        seen.extend(
            ipmi.run(&t, |s| Box::pin(s.sol_recv(Duration::from_millis(200))))
                .await
                .unwrap(),
        );
    }
    ipmi.run(&t, |s| Box::pin(s.sol_deactivate()))
        .await
        .unwrap();
    ipmi.close_all().await;
}

#[tokio::test]
async fn keepalive_holds_a_session_and_idle_ones_close() {
    let sim = SimBmc::start();
    let t = admin(&sim);
    let mut s = settings();
    s.keepalive = Duration::from_millis(400);
    s.idle_close = Duration::from_secs(3);
    let ipmi = std::sync::Arc::new(Ipmi::new(s));
    let stop = tokio_util::sync::CancellationToken::new();
    let tending = tokio::spawn(ipmi.clone().maintain(stop.clone()));
    ipmi.run(&t, |s| Box::pin(s.device_id())).await.unwrap();
    assert_eq!(ipmi.open_sessions().await, 1);
    // Keepalives go every 400 ms but are not use: the session still closes once idle 3 s.
    wait_until(
        "the idle session to close",
        Duration::from_secs(30),
        || async { ipmi.open_sessions().await == 0 },
    )
    .await;
    assert_eq!(active_sessions(&t).await, 1, "closed at the BMC too");
    stop.cancel();
    tending.await.unwrap();
}
