//! `staffroom connect` (a teacher's computer → their school's node) and `staffroom school …`
//! (the admin registers the teachers who may use the node, each with their own key).

use anyhow::Context;
use staffroom_node::api::{ApiClient, ClientConfig, Transport};
use staffroom_protocol::AuthorId;

use super::Ctx;
use crate::{render, teacher};

/// Pins the node at `addr` in this data directory: later commands sign for that node only,
/// and, over TLS, accept only its certificate. Tries TLS first; plain HTTP only without a
/// pin (a node on this machine's loopback).
pub async fn connect(ctx: &Ctx, addr: &str, pin: Option<String>) -> anyhow::Result<()> {
    let key = teacher::load(&ctx.data)?;
    let addr = addr.trim();
    let given = pin.is_some();
    let tls = Transport::Tls { pin };
    let (hello, pin) = match ApiClient::hello(addr, &tls).await {
        Ok(answer) => answer,
        Err(e) if given => return Err(e.into()),
        Err(_) => ApiClient::hello(addr, &Transport::Plain).await?,
    };
    let config = ClientConfig {
        node: addr.to_owned(),
        node_id: hello.node_id.clone(),
        pin: pin.clone(),
    };
    let path = ctx.data.client_config();
    let text = toml::to_string(&config).context("cannot write the client config")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let author = teacher::author_id(&key);
    ctx.print(&config, || {
        let channel = match (&pin, given) {
            (Some(pin), true) => format!("over TLS, its certificate matching the pin {pin}"),
            (Some(pin), false) => format!(
                "over TLS; its certificate's pin is {pin}: check it with the school's admin"
            ),
            (None, _) => "over plain HTTP (this machine only)".to_owned(),
        };
        format!(
            "This data directory now uses the node {} at {}, {channel}.\n\
             Ask the school's admin to register you: `staffroom school add-teacher {author} --name \"…\"`.\n",
            hello.node_id, config.node
        )
    })
}

pub async fn add_teacher(ctx: &Ctx, key: &str, name: &str) -> anyhow::Result<()> {
    let key: AuthorId = key
        .parse()
        .context("give the teacher's author key, as `staffroom init` printed it")?;
    let record = ctx.api()?.add_teacher(key, name).await?;
    ctx.print(&record, || {
        format!(
            "Registered {} ({}). They can now use this node with their own key.\n",
            record.name, record.key
        )
    })
}

pub async fn remove_teacher(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let key: AuthorId = key.parse().context("give the teacher's author key")?;
    ctx.api()?.remove_teacher(&key).await?;
    ctx.print(&serde_json::json!({ "removed": key }), || {
        format!("Removed {key}: its requests are refused from now on.\n")
    })
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let teachers = ctx.api()?.teachers().await?;
    ctx.print(&teachers, || {
        teachers
            .iter()
            .map(|t| {
                let role = if t.admin { "  (admin)" } else { "" };
                format!(
                    "{}  {}{role}  since {}\n",
                    t.key,
                    t.name,
                    render::date(t.added_at_ms)
                )
            })
            .collect()
    })
}
