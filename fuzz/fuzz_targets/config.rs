//! The node's config file (TOML): parsing and checking must never panic, and whatever passes
//! must survive being written out and read back unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use staffroom_node::config::NodeConfig;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let (path, data_dir) = (Path::new("config.toml"), Path::new("/data"));
    if let Ok(config) = NodeConfig::parse(text, path, data_dir) {
        let written = toml_text(&config);
        let again =
            NodeConfig::parse(&written, path, data_dir).expect("a written config reads back");
        assert_eq!(again, config, "a config round-trips");
    }
});

fn toml_text(config: &NodeConfig) -> String {
    toml::to_string(config).expect("a config writes out")
}
