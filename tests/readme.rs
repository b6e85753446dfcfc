//! The README's examples print what it shows, with the default options (issue 17).
//!
//! Every ` ```text ` block of `README.md` whose lines start with `$ ccem` is a session: each
//! command runs (through `sh`, in a fresh directory, with this build's `ccem` first on `PATH`),
//! and the lines shown under it must appear in its output, in order and character for
//! character. `...` marks lines left out.

use std::path::Path;
use std::process::Command;

/// The sessions of the README: `(command, the lines shown under it)`.
fn sessions(readme: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_text = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_text = line.trim() == "```text";
            continue;
        }
        if !in_text {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push((cmd.to_string(), Vec::new()));
        } else if let Some((_, shown)) = out.last_mut() {
            if line.trim() != "..." {
                shown.push(line.to_string());
            }
        }
    }
    out
}

#[test]
fn the_readme_prints_what_it_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let sessions = sessions(&readme);
    assert!(
        sessions.len() >= 4,
        "expected the README's sessions, found {}",
        sessions.len()
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_ccem"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = std::env::temp_dir().join(format!("ccem-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (cmd, shown) in &sessions {
        assert!(
            cmd.starts_with("ccem "),
            "a README session runs ccem: {cmd}"
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut lines = stdout.lines();
        for want in shown {
            assert!(
                lines.any(|l| l == want),
                "`{cmd}`: the README shows the line\n{want}\nwhich is not in the output (in order):\n{stdout}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
