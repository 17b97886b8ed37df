//! `staffroom network create | join | list`.

use staffroom_protocol::NetworkId;

use super::Ctx;
use crate::render;

pub async fn join(ctx: &Ctx, id: Option<NetworkId>, name: &str) -> anyhow::Result<()> {
    let record = ctx.api()?.join_network(id, name).await?;
    ctx.print(&record, || match id {
        None => format!(
            "Created network {:?}.\nIts id: {}\nOther schools join with `staffroom network join {}`.\n",
            record.name, record.id, record.id
        ),
        Some(_) => format!("Joined network {}.\n", record.id),
    })
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let networks = ctx.api()?.networks().await?;
    ctx.print(&networks, || {
        if networks.is_empty() {
            return "No networks yet: `staffroom network create NAME` or `staffroom network join ID`.\n".into();
        }
        networks
            .iter()
            .map(|n| format!("{}  {}  joined {}\n", n.id, n.name, render::date(n.joined_at_ms)))
            .collect()
    })
}
