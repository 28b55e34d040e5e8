//! The admin CLI against a real region: settings from the environment, tables, `--json`, and
//! API errors as one line with a non-zero exit.

use plinth_e2e::{Region, bin};
use std::process::Command;

fn plinth(region: &Region, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    region.cli(args)
}

#[tokio::test]
async fn hosts_list_lock_and_errors() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let (ok, out, err) = plinth(&region, &["clusters", "create", "az1"])?;
    assert!(ok, "{out}{err}");
    let agent = region.start_agent("127.0.0.2", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;

    let (ok, out, err) = plinth(&region, &["hosts", "list"])?;
    assert!(ok, "{err}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID")
            && header.contains("CLUSTER")
            && header.contains("AGENT")
            && header.ends_with("UPDATED"),
        "{out}"
    );
    assert!(
        out.contains(&agent.host_id) && out.contains("127.0.0.2") && out.contains("online"),
        "{out}"
    );
    assert!(out.contains("1 of 1 hosts"), "{out}");

    let (ok, out, _) = plinth(&region, &["--json", "hosts", "list", "--q", "127.0.0.2"])?;
    assert!(ok);
    let page: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], agent.host_id.as_str());

    let (ok, out, err) = plinth(&region, &["hosts", "lock", &agent.host_id])?;
    assert!(ok, "{err}");
    assert!(out.contains("locked"), "{out}");
    let (ok, _, err) = plinth(&region, &["hosts", "lock", &agent.host_id])?;
    assert!(!ok, "locking a locked host must fail");
    assert!(
        err.contains("host_not_available") && err.contains("HTTP 409"),
        "{err}"
    );

    // Missing settings are named.
    let out = Command::new(bin("plinth"))
        .args(["hosts", "list"])
        .env_remove("PLINTH_URL")
        .env("HOME", region.dir.path())
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("PLINTH_URL"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_and_quota_from_the_cli() -> anyhow::Result<()> {
    use plinth_e2e::instances as inst;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.3", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let tenant = inst::tenant(&region, "cli@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image_id = image["id"].as_str().unwrap_or_default();
    let password = region.dir.path().join("password");
    std::fs::write(&password, inst::PASSWORD)?;

    // An image's owner reads as the tenant's email and id; a small image's size has its unit.
    let (ok, out, err) = plinth(&region, &["images", "list"])?;
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.contains(image_id))
        .unwrap_or_default();
    assert!(
        row.contains(&format!("cli@example.com ({})", tenant.id)) && row.contains(" KiB"),
        "{out}"
    );

    let (ok, out, err) = plinth(
        &region,
        &["tenants", "quota", "set", &tenant.id, "--instances", "1"],
    )?;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = plinth(
        &region,
        &[
            "--json",
            "instances",
            "create",
            "--name",
            "cli-1",
            "--image",
            image_id,
            "--vcpus",
            "1",
            "--memory",
            "128MiB",
            "--tenant",
            &tenant.id,
            "--password-file",
            password.to_str().unwrap_or_default(),
            "--wait",
        ],
    )?;
    assert!(ok, "{out}{err}");
    let created: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(created["state"], "running", "{out}");
    let id = created["id"].as_str().unwrap_or_default().to_string();

    let (ok, out, err) = plinth(
        &region,
        &["hosts", "instances", &agent.host_id, "-q", "cli"],
    )?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&id) && out.contains("cli@example.com") && out.contains("running"),
        "{out}"
    );

    // The quota allows one: a second create fails with the reason, and nothing is made.
    let (ok, _, err) = plinth(
        &region,
        &[
            "instances",
            "create",
            "--name",
            "cli-2",
            "--image",
            image_id,
            "--vcpus",
            "1",
            "--memory",
            "128MiB",
            "--tenant",
            &tenant.id,
            "--password-file",
            password.to_str().unwrap_or_default(),
        ],
    )?;
    assert!(!ok);
    assert!(err.contains("quota_exceeded"), "{err}");

    let (ok, out, err) = plinth(
        &region,
        &["instances", "stop", &id, "--timeout", "5s", "--wait"],
    )?;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = plinth(&region, &["instances", "delete", &id, "--wait"])?;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = plinth(&region, &["--json", "instances", "list"])?;
    assert!(ok);
    let page: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(page["total"], 0, "{out}");
    Ok(())
}
