//! `staffroom web login`: a one-time link to the school node's web pages, signed in as the
//! teacher whose key this command holds.

use super::Ctx;

pub async fn login(ctx: &Ctx) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let link = api.web_sign_in().await?;
    let minutes = link.valid_secs.div_ceil(60);
    ctx.print(&link, || {
        format!(
            "{}\n\nOpen this link in your browser to sign in. It works once, within {minutes} minute{}; \
             keep it to yourself until then.\n",
            link.url,
            if minutes == 1 { "" } else { "s" }
        )
    })
}
