//! Help and shell conventions: `staffroom help` (which takes `--help` too), completion
//! scripts for each shell, and the manual page — none of which needs a node or a key.

use std::process::Command;

use staffroom_tests::cli_process::staffroom_ok;

#[test]
fn help_completions_and_the_man_page_come_without_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = staffroom_ok(d, &["help", "--help"], None);
    assert!(help.contains("Usage: staffroom help"), "{help}");
    let invite = staffroom_ok(d, &["help", "network", "invite"], None);
    assert!(
        invite.contains("Usage: staffroom network invite"),
        "{invite}"
    );
    let top = staffroom_ok(d, &["help"], None);
    assert!(
        top.contains("completions") && top.contains("network"),
        "{top}"
    );

    // bash: a script bash itself accepts, completing the commands.
    let bash = staffroom_ok(d, &["completions", "bash"], None);
    let script = d.join("staffroom.bash");
    std::fs::write(&script, &bash).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n refused the completion script");
    assert!(bash.contains("complete -F _staffroom") && bash.contains("invite"));
    let zsh = staffroom_ok(d, &["completions", "zsh"], None);
    assert!(
        zsh.starts_with("#compdef staffroom"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = staffroom_ok(d, &["completions", "fish"], None);
    assert!(fish.contains("complete -c staffroom"));

    let man = staffroom_ok(d, &["man"], None);
    assert!(
        man.contains(".TH staffroom 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(
        man.contains(".SH SUBCOMMANDS") && man.contains("staffroom\\-network"),
        "{man}"
    );
    // Nothing was created in the data directory.
    assert_eq!(
        std::fs::read_dir(d).unwrap().count(),
        1,
        "only the script written here"
    );
}
