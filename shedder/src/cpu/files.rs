//! Reading the small kernel files the meters need, below a configurable root directory.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::CpuError;
use super::parse::{count_cpus, status_value};

/// Reads files into one reused buffer, so a steady-state sample allocates nothing.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: String,
}

impl Reader {
    pub(crate) fn new() -> Reader {
        Reader {
            buf: String::with_capacity(1024),
        }
    }

    /// The whole file, whitespace-trimmed.
    pub(crate) fn read(&mut self, path: &Path) -> Result<&str, CpuError> {
        self.buf.clear();
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut self.buf))
            .map_err(|source| CpuError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(self.buf.trim())
    }

    /// Like [`read`](Self::read), but a missing file is `Ok(None)`.
    pub(crate) fn read_opt(&mut self, path: &Path) -> Result<Option<&str>, CpuError> {
        match self.read(path) {
            Ok(s) => Ok(Some(s)),
            Err(CpuError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// `root` joined with an absolute kernel path such as `/proc/self/cgroup`.
pub(crate) fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// `mount` joined with a cgroup path from `/proc/self/cgroup`, or `None` when the path is the
/// hierarchy root or climbs out of it (`/../..` is what a process sees for a cgroup outside
/// its cgroup namespace: then only the namespace's own view at `mount` is usable).
pub(crate) fn cgroup_dir(mount: &Path, cgroup_path: &str) -> Option<PathBuf> {
    let rel = Path::new(cgroup_path.trim_start_matches('/'));
    let mut parts = rel.components().peekable();
    parts.peek()?;
    parts
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| mount.join(rel))
}

/// The CPUs this process may run on: `Cpus_allowed_list` of `/proc/self/status`, else what
/// the standard library reports. Used when the cgroup names no cpuset.
pub(crate) fn allowed_cpus(root: &Path, reader: &mut Reader) -> usize {
    let from_status = reader
        .read_opt(&under(root, "/proc/self/status"))
        .ok()
        .flatten()
        .and_then(|s| status_value(s, "Cpus_allowed_list"))
        .and_then(|list| count_cpus(list).ok().flatten());
    from_status.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The first of `names` inside `dir` that names a non-empty CPU list, as a count.
pub(crate) fn cpuset_count(
    reader: &mut Reader,
    dir: &Path,
    names: &[&str],
) -> Result<Option<usize>, CpuError> {
    for name in names {
        let path = dir.join(name);
        if let Some(list) = reader.read_opt(&path)? {
            let n = count_cpus(list).map_err(|e| CpuError::format(&path, e.to_string()))?;
            if n.is_some() {
                return Ok(n);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_dirs_stay_inside_the_mount() {
        let m = Path::new("/sys/fs/cgroup");
        assert_eq!(cgroup_dir(m, "/"), None);
        assert_eq!(cgroup_dir(m, ""), None);
        assert_eq!(cgroup_dir(m, "/../.."), None);
        assert_eq!(cgroup_dir(m, "/a/../b"), None);
        assert_eq!(
            cgroup_dir(m, "/kubepods/pod1"),
            Some(PathBuf::from("/sys/fs/cgroup/kubepods/pod1"))
        );
    }

    #[test]
    fn under_strips_the_leading_slash() {
        assert_eq!(
            under(Path::new("/tmp/x"), "/proc/stat"),
            PathBuf::from("/tmp/x/proc/stat")
        );
        assert_eq!(
            under(Path::new("/"), "/proc/stat"),
            PathBuf::from("/proc/stat")
        );
    }
}
