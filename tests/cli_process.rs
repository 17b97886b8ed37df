//! Running the real `staffroom` binary in tests: building it once, running commands, and
//! nodes as child processes that are always stopped, even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The `staffroom` binary of this build profile, built on first use. Cargo builds a binary
/// for integration tests only in its own package, so this crate asks cargo for it.
pub fn staffroom_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let test_exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/e2e-… → target/<profile>/staffroom
        let profile_dir = test_exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "--quiet",
            "-p",
            "staffroom-cli",
            "--bin",
            "staffroom",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the staffroom binary failed");
        let bin = profile_dir.join(format!("staffroom{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A copy of the `staffroom` binary in `dir`, for a long test that starts nodes again and
/// again: a build during the run cannot swap the binary under it.
pub fn pinned_staffroom_bin(dir: &Path) -> PathBuf {
    let copy = dir.join(format!("staffroom{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(staffroom_bin(), &copy).expect("copy the staffroom binary");
    copy
}

/// Runs `staffroom --data-dir DIR ARGS…`, with `stdin` piped in if given.
pub fn staffroom(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(staffroom_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("staffroom starts");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("staffroom finishes")
}

/// [`staffroom`] from async code, off the runtime's threads (an in-process node answering
/// the command may run on them).
pub async fn staffroom_async(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        staffroom(&dir, &args, None)
    })
    .await
    .expect("the CLI ran")
}

/// Runs a command that must succeed, returning its stdout.
pub fn staffroom_ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = staffroom(dir, args, stdin);
    assert!(
        out.status.success(),
        "staffroom {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A `staffroom node run` child process; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct NodeProcess {
    child: Option<Child>,
}

/// `staffroom node run` on loopback with ephemeral ports and no mDNS: how tests run nodes.
pub const NODE_RUN: [&str; 9] = [
    "node",
    "run",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--api",
    "127.0.0.1:0",
    "--web",
    "127.0.0.1:0",
    "--no-mdns",
];

impl NodeProcess {
    pub fn start(dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut args = NODE_RUN.to_vec();
        args.extend_from_slice(extra);
        NodeProcess::spawn(Command::new(staffroom_bin()), dir, &args)
    }

    /// Like [`NodeProcess::start`], running the binary at `bin` (a copy made by
    /// [`pinned_staffroom_bin`], say).
    pub fn start_bin(bin: &Path, dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut args = NODE_RUN.to_vec();
        args.extend_from_slice(extra);
        NodeProcess::spawn(Command::new(bin), dir, &args)
    }

    /// Like [`NodeProcess::start`], with the node's open-file limit (soft and hard) set to
    /// `open_files_max`, as on a machine with a low limit.
    pub fn start_with_open_files_max(
        dir: &Path,
        open_files_max: u32,
        extra: &[&str],
    ) -> NodeProcess {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files_max} && exec \"$0\" \"$@\""))
            .arg(staffroom_bin());
        let mut args = NODE_RUN.to_vec();
        args.extend_from_slice(extra);
        NodeProcess::spawn(command, dir, &args)
    }

    /// The node's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts `staffroom --data-dir DIR node run ARGS…` inside network namespace `ns` (`ip netns
    /// exec` replaces itself with the node, so the child is the node).
    pub fn start_in_namespace(ns: &str, dir: &Path, args: &[&str]) -> NodeProcess {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(staffroom_bin());
        let mut all = vec!["node", "run"];
        all.extend_from_slice(args);
        NodeProcess::spawn(command, dir, &all)
    }

    /// Runs `command --data-dir DIR ARGS…` as the node, with no terminal. With
    /// `STAFFROOM_TEST_LOG_DIR` set, the node's log goes to a file there named after its data
    /// directory (set `RUST_LOG` too, for more than warnings).
    fn spawn(mut command: Command, dir: &Path, args: &[&str]) -> NodeProcess {
        let log = std::env::var_os("STAFFROOM_TEST_LOG_DIR").and_then(|logs| {
            let name = dir.file_name()?.to_string_lossy().into_owned();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(&logs).join(format!("{name}.log")))
                .ok()?;
            Some(Stdio::from(file))
        });
        let child = command
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.unwrap_or_else(Stdio::null))
            .spawn()
            .expect("node starts");
        NodeProcess { child: Some(child) }
    }

    /// Sends SIGTERM (as a service manager would) and returns whether the node exited cleanly.
    pub fn stop(mut self) -> bool {
        self.signal("-TERM")
    }

    /// Sends SIGINT (as Ctrl-C does) and returns whether the node exited cleanly.
    pub fn interrupt(mut self) -> bool {
        self.signal("-INT")
    }

    /// Kills the node with SIGKILL, as a power cut or the OOM killer would: no clean stop.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&mut self, signal: &str) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let asked = std::time::Instant::now();
        while asked.elapsed() < STOP_WAIT {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    eprintln!("the node exited with {status} after {signal}");
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the node had not exited {STOP_WAIT:?} after {signal}: killed");
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

/// How long a node may take to stop after SIGTERM or SIGINT. A clean stop flushes the store
/// and commits the search index with `fsync`s, which wait for the disk that other tests fill
/// at the same time (CI runs them in parallel). With 10 s, the kill test's last stop failed
/// twice in CI and never here; the message below now says whether it was slow or failed.
const STOP_WAIT: Duration = Duration::from_secs(30);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.signal("-TERM");
    }
}
