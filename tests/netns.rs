//! A network lab in Linux network namespaces, for tests of what happens between schools
//! behind NAT routers: namespaces, veth links, a bridge standing in for the internet, and
//! routers doing source NAT with nftables (`masquerade`) that drop unsolicited inbound
//! traffic, forwarded or addressed to the router itself (silently: a router that answers a
//! stray SYN with a reset kills a hole punch whose other half is a moment late). Every address lives inside namespaces the lab creates; dropping the lab deletes
//! them. Needs root, `ip` (iproute2) and `nft` (nftables).

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The lab: the namespaces it made, deleted when it is dropped.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

/// How a router maps ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Keeps the source port where it can (endpoint-independent): what hole punching needs.
    KeepsPorts,
    /// A fresh random port per mapping: punching cannot beat it.
    RandomPorts,
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn must(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// A new, empty lab; panics with what is missing if this machine cannot host one.
    pub fn open() -> Lab {
        let root = run("id", &["-u"]);
        assert!(
            String::from_utf8_lossy(&root.stdout).trim() == "0",
            "the namespace tests need root (CI runs them as root)"
        );
        for tool in ["ip", "nft"] {
            let found = run("sh", &["-c", &format!("command -v {tool}")]);
            assert!(found.status.success(), "{tool} is not installed");
        }
        // Labs in one process get tags of their own.
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Lab {
            tag: format!("sr{}x{n}", std::process::id() % 100_000),
            namespaces: Vec::new(),
        }
    }

    /// The full name of the lab's namespace `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.tag)
    }

    fn add_ns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    fn ip(ns: &str, args: &[&str]) {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    /// A veth pair: `a_if` in `a`, `b_if` in `b`, both up.
    fn link(a: &str, a_if: &str, b: &str, b_if: &str) {
        must(
            "ip",
            &[
                "link", "add", a_if, "netns", a, "type", "veth", "peer", b_if, "netns", b,
            ],
        );
        Lab::ip(a, &["link", "set", a_if, "up"]);
        Lab::ip(b, &["link", "set", b_if, "up"]);
    }

    /// The "internet": a namespace holding a bridge that public hosts and routers' WAN sides
    /// plug into (10.99.0.0/24).
    pub fn internet(&mut self) {
        let wan = self.add_ns("wan");
        Lab::ip(&wan, &["link", "add", "br0", "type", "bridge"]);
        Lab::ip(&wan, &["link", "set", "br0", "up"]);
    }

    fn plug_into_internet(&mut self, ns: &str, ifname: &str, port: &str, cidr: &str) {
        let wan = self.ns("wan");
        Lab::link(ns, ifname, &wan, port);
        Lab::ip(&wan, &["link", "set", port, "master", "br0"]);
        Lab::ip(ns, &["addr", "add", cidr, "dev", ifname]);
    }

    /// A public host `name` at `ip` on the internet; returns its namespace.
    pub fn public_host(&mut self, name: &str, ip: &str) -> String {
        let ns = self.add_ns(name);
        self.plug_into_internet(
            &ns.clone(),
            "eth0",
            &format!("p{name}"),
            &format!("{ip}/24"),
        );
        ns
    }

    /// A school `name` behind its own router: the router's WAN side at `wan_ip` on the
    /// internet, the school's host at 10.99.`subnet`.2 behind it. Returns the host's
    /// namespace.
    pub fn school(&mut self, name: &str, wan_ip: &str, subnet: u8, nat: Nat) -> String {
        let router = self.add_ns(&format!("{name}r"));
        let host = self.add_ns(name);
        self.plug_into_internet(
            &router.clone(),
            "wan",
            &format!("w{name}"),
            &format!("{wan_ip}/24"),
        );
        Lab::link(&router, "lan", &host, "eth0");
        Lab::ip(
            &router,
            &["addr", "add", &format!("10.99.{subnet}.1/24"), "dev", "lan"],
        );
        Lab::ip(
            &host,
            &[
                "addr",
                "add",
                &format!("10.99.{subnet}.2/24"),
                "dev",
                "eth0",
            ],
        );
        Lab::ip(
            &host,
            &[
                "route",
                "add",
                "default",
                "via",
                &format!("10.99.{subnet}.1"),
            ],
        );
        must(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ],
        );
        let mapping = match nat {
            Nat::KeepsPorts => "masquerade",
            Nat::RandomPorts => "masquerade fully-random",
        };
        let rules = format!(
            "table ip nat {{\n  chain postrouting {{\n    type nat hook postrouting priority 100;\n    \
             oifname \"wan\" {mapping}\n  }}\n}}\n\
             table ip filter {{\n  chain forward {{\n    \
             type filter hook forward priority 0; policy drop;\n    \
             ct state established,related accept\n    iifname \"lan\" accept\n  }}\n  \
             chain input {{\n    type filter hook input priority 0; policy accept;\n    \
             iifname \"wan\" ct state established,related accept\n    \
             iifname \"wan\" drop\n  }}\n}}\n"
        );
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &router, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft runs");
        use std::io::Write;
        nft.stdin
            .take()
            .expect("piped")
            .write_all(rules.as_bytes())
            .expect("rules written");
        assert!(
            nft.wait().expect("nft ends").success(),
            "nft refused {rules}"
        );
        host
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Processes still inside are killed first, or the namespace lingers.
            let pids = run("ip", &["netns", "pids", ns]).stdout;
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = run("kill", &["-9", pid]);
            }
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Runs `staffroom --data-dir DIR ARGS…` inside namespace `ns`.
pub fn staffroom_in(ns: &str, dir: &Path, args: &[&str]) -> Output {
    let bin = crate::cli_process::staffroom_bin();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("staffroom runs")
}
