//! What went wrong, for scripts: a stable code for every error the CLI reports, and the
//! `{"code", "error"}` object printed under `--json`.

use staffroom_node::api::ClientError;
use staffroom_node::config::ConfigError;

/// The stable code of an error: the node's own code when it answered with one, else the
/// kind of failure found along the error's chain.
pub fn code(e: &anyhow::Error) -> &str {
    for cause in e.chain() {
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return match client {
                ClientError::Api { code, .. } => code,
                ClientError::NotRunning { .. } => "node_not_running",
                ClientError::NoNode { .. } => "no_node",
                ClientError::NoDataDir { .. } => "no_data_dir",
                ClientError::WrongNode { .. } => "wrong_node",
                ClientError::Key(_) => "teacher_key",
                ClientError::Config(_) => "config",
                ClientError::Http(_) => "http",
                ClientError::Io { .. } => "io",
            };
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return "config";
        }
        if let Some(b) = cause.downcast_ref::<staffroom_node::backup::BackupError>() {
            use staffroom_node::backup::BackupError as B;
            return match b {
                B::NodeRunning(_) => "node_running",
                B::Damaged { .. } | B::NotABackup(_) => "bad_backup",
                B::OtherTeacherKey { .. } => "other_teacher_key",
                _ => "backup",
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return "io";
        }
    }
    "error"
}

/// The error and its causes on one line, each cause once: many errors already end with the
/// text of their source, which a plain `{:#}` would print twice ("in use: in use").
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Prints `{"code": code, "error": message}` on stderr.
pub fn print_json(code: &str, message: &str) {
    let object = serde_json::json!({ "code": code, "error": message.trim_end() });
    eprintln!("{object}");
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_nodes_code_or_their_kind() {
        let api = anyhow::Error::new(ClientError::Api {
            status: 403,
            code: "not_member".into(),
            message: "no".into(),
        });
        assert_eq!(code(&api.context("posting")), "not_member");
        let down = anyhow::Error::new(ClientError::NotRunning { addr: "x".into() });
        assert_eq!(code(&down), "node_not_running");
        let none = anyhow::Error::new(ClientError::NoNode { dir: "d".into() });
        assert_eq!(code(&none), "no_node");
        assert_eq!(code(&anyhow::anyhow!("plain")), "error");
        let io = anyhow::Error::new(std::io::Error::other("disk"));
        assert_eq!(code(&io), "io");
    }

    #[test]
    fn each_cause_is_said_once() {
        let in_use = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(staffroom_node::NodeError::Api {
            addr: "127.0.0.1:4041".parse().unwrap(),
            source: in_use,
        });
        assert_eq!(
            message(&e),
            "cannot start the API on 127.0.0.1:4041: Address already in use"
        );
        let e = anyhow::Error::new(std::io::Error::other("disk gone")).context("saving");
        assert_eq!(message(&e), "saving: disk gone");
    }
}
