//! Child processes that cannot outlive the test binary.
//!
//! The shared control plane lives in a `static`, whose destructor never runs, and a test
//! binary can also be killed or interrupted. So every child gets a watchdog: a tiny `sh`
//! loop that polls the test binary's pid and terminates the child once the test binary is
//! gone. `Drop` stops the child directly in the normal case. Children and watchdogs run in
//! their own process groups so that a Ctrl-C aimed at `cargo test` reaches the test binary
//! only, and the watchdog then cleans up in order rather than racing the signal.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Terminates `$2` (then kills it after 5 s) when process `$1` is gone; ends by itself when
/// `$2` is gone. `kill -0` also succeeds on a zombie, so a child that the test binary has
/// not reaped yet still counts as alive, which keeps its pid from being reused meanwhile.
const WATCHDOG: &str = r#"
parent=$1 child=$2
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
if kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    i=0
    while [ $i -lt 20 ] && kill -0 "$child" 2>/dev/null; do sleep 0.25; i=$((i + 1)); done
    kill -KILL "$child" 2>/dev/null
fi
"#;

/// Removes directory `$2` once process `$1` is gone, after its children had time to stop.
const DIR_REAPER: &str = r#"
parent=$1 dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
sleep 7
rm -rf "$dir"
"#;

/// A running child process with its output in a log file.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    child: Child,
    watchdog: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self> {
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        let watchdog = watch(WATCHDOG, "accord-tests-watchdog", &child.id().to_string());
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(error) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        Ok(Process {
            name: name.to_owned(),
            child,
            watchdog,
            log: log.to_owned(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the log, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Sends SIGTERM, waits up to `grace` for the process to exit, then kills it. A zero
    /// `grace` kills it at once.
    pub(crate) fn stop(&mut self, grace: Duration) {
        if self.exited().is_none() && !grace.is_zero() {
            let pid = Pid::from_raw(self.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Removes a directory when the test binary is gone, for control planes whose destructor
/// never runs. Dropping it stops the reaper without removing anything.
#[derive(Debug)]
pub(crate) struct DirReaper(Child);

impl DirReaper {
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        let dir = dir
            .to_str()
            .context("temporary directory path is not UTF-8")?;
        Ok(DirReaper(watch(DIR_REAPER, "accord-tests-reaper", dir)?))
    }
}

impl Drop for DirReaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Terminates a process that the test binary started itself (such as an operator kept for the
/// whole binary in a `static`) once the test binary is gone. Dropping it stops the watchdog
/// without touching the process.
#[derive(Debug)]
pub struct Watchdog(Child);

impl Watchdog {
    pub fn start(pid: u32) -> Result<Self> {
        Ok(Watchdog(watch(
            WATCHDOG,
            "accord-tests-watchdog",
            &pid.to_string(),
        )?))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(script: &str, name: &str, argument: &str) -> Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(name)
        .arg(std::process::id().to_string())
        .arg(argument)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting a watchdog with sh")
}

/// The last `lines` lines of a log, without the list of flags that the Kubernetes
/// components print at start-up.
pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains("] FLAG: --"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
