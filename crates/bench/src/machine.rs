//! What the numbers were taken on: cores, kernel, containerd and runc versions, the shim
//! binaries, and how busy the machine was (other builds skew every latency).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;
use undertaker_cgroups::procfs;

/// The machine and software a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub containerd: String,
    pub runc: String,
    /// Size of each shim binary, in bytes.
    pub undertaker_shim_bytes: Option<u64>,
    pub runc_shim_bytes: Option<u64>,
}

impl Machine {
    pub fn describe(bin_dir: &Path) -> Machine {
        let size = |path: Option<std::path::PathBuf>| {
            path.and_then(|path| std::fs::metadata(path).ok())
                .map(|meta| meta.len())
        };
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            containerd: version_of("containerd"),
            runc: version_of("runc"),
            undertaker_shim_bytes: size(Some(bin_dir.join("containerd-shim-undertaker-v2"))),
            runc_shim_bytes: size(undertaker_testbed::find_program("containerd-shim-runc-v2")),
        }
    }
}

/// How busy the machine is at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    /// The three load averages of /proc/loadavg.
    pub loadavg: String,
    /// Compilers and linkers running (other builds on the machine).
    pub build_processes: usize,
}

impl Load {
    pub fn now() -> Load {
        let loadavg = read_trimmed("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Load {
            loadavg,
            build_processes: count_build_processes(),
        }
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "load average {}, {} compiler/linker processes running",
            self.loadavg, self.build_processes
        )
    }
}

/// The busiest the machine was while a run was sampled.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Busiest {
    /// The highest 1-minute load average seen.
    pub loadavg_1m: f64,
    /// The most compiler and linker processes seen at once.
    pub build_processes: usize,
    pub samples: usize,
}

impl std::fmt::Display for Busiest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "busiest of {} samples: 1-minute load average {:.2}, {} compiler/linker processes",
            self.samples, self.loadavg_1m, self.build_processes
        )
    }
}

/// Samples how busy the machine is every `every` until `stop` fires, then returns the
/// busiest values seen.
pub async fn watch_load(every: Duration, mut stop: oneshot::Receiver<()>) -> Busiest {
    let mut busiest = Busiest::default();
    loop {
        let load = Load::now();
        let one_minute = load
            .loadavg
            .split_whitespace()
            .next()
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0);
        busiest.loadavg_1m = busiest.loadavg_1m.max(one_minute);
        busiest.build_processes = busiest.build_processes.max(load.build_processes);
        busiest.samples += 1;
        tokio::select! {
            _ = &mut stop => return busiest,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn count_build_processes() -> usize {
    const BUILD_TOOLS: [&str; 5] = ["rustc", "cc1", "ld", "cc", "musl-gcc"];
    let proc_root = Path::new(procfs::HOST_PROC);
    procfs::pids(proc_root)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pid| procfs::stat(proc_root, pid).ok().flatten())
        .filter(|stat| BUILD_TOOLS.contains(&stat.comm.as_str()) || stat.comm.starts_with("ld."))
        .count()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}

/// `<program> 1.6.20~ds1` from the first line of `<program> --version` (containerd prints
/// `containerd <module> <version> <revision>`, runc `runc version <version>`).
fn version_of(program: &str) -> String {
    let first_line = Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .map(str::to_string)
        });
    match first_line {
        None => format!("{program}: not found"),
        Some(line) => match line.split_whitespace().nth(2) {
            Some(version) => format!("{program} {version}"),
            None => line,
        },
    }
}
