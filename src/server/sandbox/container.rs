//! Every Docker flag of a sandbox container, in one place, and the guard that removes it.

use super::languages::Language;
use crate::server::config::SandboxConfig;
use bollard::container::AttachContainerResults;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// Label on every container the engine creates (its value is the configured
/// `SANDBOX_LABEL`); the sweep finds leftovers by it.
pub const LABEL: &str = "own-ide.sandbox";
/// Label naming the engine instance that created a container.
pub const INSTANCE_LABEL: &str = "own-ide.instance";
/// Label on containers made for a warm pool (they may wait there for a long time).
pub const POOLED_LABEL: &str = "own-ide.pooled";

/// Ids of the containers this engine holds (pooled or in a run): the sweep leaves them
/// alone and takes any other container of this instance.
pub type Owned = Arc<std::sync::Mutex<HashSet<String>>>;

/// The unprivileged user inside every runtime image.
pub const SANDBOX_USER: &str = "10001:10001";

/// The seccomp profile of every sandbox: Docker's default profile without the
/// `io_uring_*` calls (which newer Docker releases removed), so that the kernel surface a
/// program reaches does not depend on the daemon's version.
pub const SECCOMP_PROFILE: &str = include_str!("../../../runtimes/seccomp.json");
/// Files and directories each tmpfs may hold.
pub const TMPFS_INODES: u64 = 4096;

/// Memory limit of a language's containers, in bytes.
pub fn memory_bytes(cfg: &SandboxConfig, lang: &Language) -> i64 {
    let mb = if lang.big_memory {
        cfg.java_memory_mb
    } else {
        cfg.memory_mb
    };
    (mb * 1024 * 1024) as i64
}

/// The create request of a sandbox container: no network, read-only root, small tmpfs
/// work dir, unprivileged, no capabilities, bounded memory/CPU/pids/files, the supervisor as pid 1,
/// first in line for the OOM killer, and an environment with nothing from the host.
///
/// `main` is the container's own process (the run's supervisor), waiting on an open
/// stdin that is closed when the one attached client closes it. `memory` is the limit
/// in bytes (the language's default, or what the run chose).
pub fn spec(
    cfg: &SandboxConfig,
    lang: &Language,
    instance: &str,
    pooled: bool,
    memory: i64,
    main: Vec<String>,
) -> ContainerCreateBody {
    // An inode limit, so that a program creating empty files in a loop fills its own
    // tmpfs and not the host's memory; nothing is ever executed from /tmp.
    let tmpfs_opts = |exec: &str| {
        format!(
            "rw,{exec},nosuid,nodev,size={}m,nr_inodes={TMPFS_INODES},uid=10001,gid=10001,mode=0700",
            cfg.tmpfs_mb
        )
    };
    let ulimit = |name: &str, v: i64| ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(v),
        hard: Some(v),
    };
    let host = HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([
            ("/work".to_string(), tmpfs_opts("exec")),
            ("/tmp".to_string(), tmpfs_opts("noexec")),
        ])),
        cap_drop: Some(vec!["ALL".into()]),
        // The project's own profile, whatever the daemon's default is.
        security_opt: Some(vec![
            format!("seccomp={SECCOMP_PROFILE}"),
            "no-new-privileges".into(),
        ]),
        // The attach stream carries the output; nothing goes to the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        runtime: Some(cfg.runtime.clone()),
        memory: Some(memory),
        memory_swap: Some(memory),
        memory_swappiness: Some(0),
        nano_cpus: Some((cfg.cpus * 1e9) as i64),
        pids_limit: Some(cfg.pids),
        ulimits: Some(vec![
            ulimit("nofile", 256),
            ulimit("fsize", (cfg.tmpfs_mb * 1024 * 1024) as i64),
            ulimit("core", 0),
        ]),
        // No init process: the supervisor is pid 1 and reaps every child, and under runc
        // a pid 1 ignores the program's SIGKILL, so the report always arrives.
        init: Some(false),
        oom_score_adj: Some(1000),
        ipc_mode: Some("private".into()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(format!("{}{}:latest", cfg.image_prefix, lang.id)),
        cmd: Some(main),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        user: Some(SANDBOX_USER.into()),
        working_dir: Some("/work".into()),
        hostname: Some("sandbox".into()),
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".into(),
            "HOME=/work".into(),
            "LANG=C.UTF-8".into(),
        ]),
        network_disabled: Some(true),
        labels: Some(HashMap::from([
            (LABEL.to_string(), cfg.label.clone()),
            (INSTANCE_LABEL.to_string(), instance.to_string()),
            (POOLED_LABEL.to_string(), u8::from(pooled).to_string()),
            ("own-ide.language".to_string(), lang.id.to_string()),
        ])),
        host_config: Some(host),
        ..Default::default()
    }
}

/// Who holds a new container: the engine instance, whether it is for a pool, the set of
/// ids the instance holds, and the tracker its removal runs on.
pub struct Holder<'a> {
    pub instance: &'a str,
    pub pooled: bool,
    pub owned: &'a Owned,
    pub tracker: &'a TaskTracker,
}

/// Creates and starts a fresh container; on any failure nothing is left behind. It is
/// attached to before it starts, so nothing its process (`main`, see [`spec`]) writes
/// can be missed, and the streams travel with it.
pub async fn create_started(
    docker: &Docker,
    cfg: &SandboxConfig,
    lang: &Language,
    holder: Holder<'_>,
    memory: i64,
    main: Vec<String>,
) -> Result<Container, bollard::errors::Error> {
    let Holder {
        instance,
        pooled,
        owned,
        tracker,
    } = holder;
    let name = format!("own-ide-{}-{}", lang.id, uuid::Uuid::new_v4().simple());
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = docker
        .create_container(Some(opts), spec(cfg, lang, instance, pooled, memory, main))
        .await?;
    owned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(created.id.clone());
    let mut container = Container {
        docker: docker.clone(),
        id: created.id,
        tracker: tracker.clone(),
        owned: owned.clone(),
        io: std::sync::Mutex::new(None),
    };
    let opts = AttachContainerOptionsBuilder::default()
        .stream(true)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .build();
    let io = docker.attach_container(&container.id, Some(opts)).await?;
    *container.io.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(io);
    docker.start_container(&container.id, None).await?;
    Ok(container)
}

/// A started container that belongs to one run. Dropping it removes it (in the
/// background), so no path can forget to clean up.
pub struct Container {
    docker: Docker,
    pub id: String,
    tracker: TaskTracker,
    owned: Owned,
    /// The attached stdin and output of the container's process, taken by the run that
    /// uses it. (`None` only until attached; a mutex only so that the container can be
    /// shared across threads.)
    io: std::sync::Mutex<Option<AttachContainerResults>>,
}

impl Container {
    /// Takes the attached streams (once: a second call gets `None`).
    pub fn take_io(&self) -> Option<AttachContainerResults> {
        self.io.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Kills and removes the container now, waiting for Docker to confirm.
    pub async fn remove_now(&self) {
        remove(&self.docker, &self.id).await;
    }

    /// Whether Docker reports the container's process as running (a pooled container
    /// may have died meanwhile, say with a restarted Docker engine).
    pub async fn is_running(&self) -> bool {
        matches!(
            self.docker.inspect_container(&self.id, None).await,
            Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true)
        )
    }

    /// How the container's own process ended, once Docker reports it stopped (the state
    /// can lag the end of its output by a moment).
    pub async fn exit_state(&self) -> Result<ExitState, String> {
        for _ in 0..50 {
            let state = self
                .docker
                .inspect_container(&self.id, None)
                .await
                .map_err(|e| e.to_string())?
                .state
                .unwrap_or_default();
            if state.running != Some(true) {
                let finished_at = state.finished_at.as_deref().and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                });
                return Ok(ExitState {
                    code: state.exit_code.unwrap_or(-1),
                    oom_killed: state.oom_killed == Some(true),
                    finished_at: finished_at.map(std::time::SystemTime::from),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err("the container did not report its exit".into())
    }
}

/// How a container's own process ended, as Docker saw it.
#[derive(Debug)]
pub struct ExitState {
    pub code: i64,
    pub oom_killed: bool,
    /// When it ended (`None` if Docker did not say).
    pub finished_at: Option<std::time::SystemTime>,
}

impl Drop for Container {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        // A removal that fails leaves an unowned container: the next sweep takes it.
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.tracker.spawn_on(
                async move {
                    remove(&docker, &id).await;
                },
                &handle,
            );
        }
    }
}

/// Force-removes a container; a container that is already gone is fine. Returns
/// whether it is gone.
pub async fn remove(docker: &Docker, id: &str) -> bool {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => true,
        // 409: a removal is already in progress.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => true,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "could not remove sandbox container; the sweep tries again");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_is_locked_down() {
        let cfg = SandboxConfig::default();
        let lang = super::super::languages::find("python").unwrap();
        let s = spec(
            &cfg,
            lang,
            "test",
            true,
            memory_bytes(&cfg, lang),
            vec!["true".into()],
        );
        let labels = s.labels.clone().unwrap();
        assert_eq!(labels[LABEL], "1");
        assert_eq!(labels[INSTANCE_LABEL], "test");
        assert_eq!(labels[POOLED_LABEL], "1");
        let h = s.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(h.memory, h.memory_swap);
        assert_eq!(h.memory, Some(256 * 1024 * 1024));
        assert_eq!(h.pids_limit, Some(64));
        assert!(
            h.binds.is_none() && h.mounts.is_none(),
            "no host path is ever mounted"
        );
        assert_eq!(s.user.as_deref(), Some(SANDBOX_USER));
        let opts = h.security_opt.clone().unwrap();
        assert_eq!(opts.len(), 2);
        let profile: serde_json::Value =
            serde_json::from_str(opts[0].strip_prefix("seccomp=").unwrap()).unwrap();
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = profile["syscalls"].to_string();
        assert!(allowed.contains("\"openat\"") && !allowed.contains("io_uring"));
        assert_eq!(opts[1], "no-new-privileges");
        assert_eq!(
            h.log_config.as_ref().and_then(|l| l.typ.as_deref()),
            Some("none"),
            "no container log on the host"
        );
        assert_eq!(h.runtime.as_deref(), Some("runc"));
        assert_eq!(h.init, Some(false), "the supervisor is pid 1");
        let tmpfs = h.tmpfs.clone().unwrap();
        assert!(tmpfs["/tmp"].contains("noexec") && tmpfs["/tmp"].contains("nr_inodes=4096"));
        assert!(tmpfs["/work"].contains(",exec,") && tmpfs["/work"].contains("nr_inodes="));
        assert!(s.env.unwrap().iter().all(|e| !e.contains("SECRET")));
        let java = super::super::languages::find("java").unwrap();
        assert_eq!(
            spec(
                &cfg,
                java,
                "t",
                false,
                memory_bytes(&cfg, java),
                vec!["true".into()]
            )
            .host_config
            .unwrap()
            .memory,
            Some(512 * 1024 * 1024)
        );
    }
}
