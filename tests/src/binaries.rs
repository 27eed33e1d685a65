//! Where the etcd, kube-apiserver and kube-controller-manager binaries come from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Names a directory holding prebuilt `etcd`, `kube-apiserver` and `kube-controller-manager`
/// binaries; when unset, `tests/k8s/build.sh` provides them.
pub const BIN_DIR_ENV: &str = "ACCORD_TEST_K8S_BIN_DIR";

/// Paths of the three control-plane binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

impl Binaries {
    /// Finds the binaries: in `$ACCORD_TEST_K8S_BIN_DIR` if set, otherwise in the cache
    /// directory that `tests/k8s/build.sh` prints. The script returns at once when its stamp
    /// matches; otherwise it builds (many minutes cold) with its progress on stderr.
    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os(BIN_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => build()?,
        };
        let binaries = Binaries {
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
        };
        for path in [
            &binaries.etcd,
            &binaries.kube_apiserver,
            &binaries.kube_controller_manager,
        ] {
            if !path.is_file() {
                bail!("{} is missing; run tests/k8s/build.sh", path.display());
            }
        }
        Ok(binaries)
    }
}

/// Runs `tests/k8s/build.sh` and returns the directory that it prints last.
fn build() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed with {}", script.display(), output.status);
    }
    let stdout = String::from_utf8(output.stdout).context("build.sh printed non-UTF-8")?;
    let dir = stdout
        .lines()
        .last()
        .context("build.sh printed no directory")?;
    Ok(PathBuf::from(dir.trim()))
}
