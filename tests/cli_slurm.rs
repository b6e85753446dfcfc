//! The SLURM example (`examples/slurm/`): its scripts, run without SLURM (one array task after
//! another, then the merge), give the `results.csv` of the unsharded sweep byte for byte.

use std::path::Path;
use std::process::Command;

const SWEEP_ARGS: &str = "--mode encoder --loss sigmoid --n 4..9 --t 0.5..3:3 --seeds 2 --steps 20";

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/slurm")
        .join(name)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sharded_job_array_then_merge_equals_the_unsharded_run_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let ccem = assert_cmd::cargo::cargo_bin("ccem");
    let full = d.path().join("full");
    run(Command::new(&ccem)
        .arg("sweep")
        .args(SWEEP_ARGS.split(' '))
        .args(["--quiet", "--out"])
        .arg(&full));
    let shards = 3;
    let out = d.path().join("runs");
    for task in 0..shards {
        run(Command::new("bash")
            .arg(script("sweep.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SHARDS", shards.to_string())
            .env("CCEM", &ccem)
            .env("OUT", &out)
            .env("THREADS", "2")
            .env("SWEEP_ARGS", SWEEP_ARGS));
    }
    run(Command::new("bash")
        .arg(script("merge.sbatch"))
        .env("SHARDS", shards.to_string())
        .env("CCEM", &ccem)
        .env("OUT", &out));
    let merged = std::fs::read(out.join("merged/results.csv")).unwrap();
    assert_eq!(merged, std::fs::read(full.join("results.csv")).unwrap());
    assert_eq!(
        String::from_utf8(merged).unwrap().lines().count(),
        1 + 6 * 3 * 2
    );
    // Without a task id the sweep script refuses to run.
    let bare = Command::new("bash")
        .arg(script("sweep.sbatch"))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env("CCEM", &ccem)
        .output()
        .unwrap();
    assert!(!bare.status.success());
}
