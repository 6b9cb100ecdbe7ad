//! The writers' lease on a bucket: one writer at a time across machines.
//!
//! Garage ignores If-None-Match on PUT, so the lease cannot be one object created
//! conditionally. Each writer instead writes a claim of its own under `lease/`, then lists
//! them all: it holds the lease when no other live claim is there, and otherwise withdraws its
//! claim. Two writers that claim at once both see each other and both withdraw (and try again
//! after random pauses); a writer whose list did not show a rival wrote its claim before that
//! rival listed, so the rival sees it and withdraws. Ordering claims by time instead would not
//! be safe: a server's modification time is not the moment a write becomes visible. This needs only read-after-write and list-after-write consistency, which AWS S3,
//! Ceph RGW, MinIO and Garage all give.
//!
//! A claim is renewed every quarter of its time to live. One not renewed for its time to live
//! (measured between the server's own modification times, so the writers' clocks play no
//! part) belongs to a writer that died: the next writer removes it. A writer whose claim was
//! removed that way learns it at the next renewal, and [`Lease::confirm`] refuses the switch.
//!
//! A claim also names the process that wrote it: the kernel's boot ID, the PID namespace and
//! the PID. A writer that finds a claim of a process of its own machine, boot and namespace
//! that is no longer running (killed, crashed) removes it at once instead of waiting out its
//! time to live: that process can neither renew nor switch any more. Any doubt (another
//! machine or container, an older claim without these fields, a PID in use again, a process
//! not yet reaped) leaves the claim to expire.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Bucket, BucketError, ObjectInfo};
use crate::hint::Hint;

const CLAIMS: &str = "lease/";
/// A claim is a few hundred bytes; anything larger is not one.
const CLAIM_LIMIT: u64 = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    /// How long a claim lives without renewal.
    pub ttl: Duration,
    /// How long to try again while another writer holds the lease. Writers started together
    /// (timers at the same minute) all withdraw at their first try; random pauses between
    /// tries let one of them win.
    pub wait: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(60),
            wait: Duration::from_secs(10),
        }
    }
}

/// Who holds (or held) a lease: shown to the writer that is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The airlock command that took the lease (`publish`, `sync` ...).
    pub command: String,
}

impl Holder {
    pub fn this_process(command: &str) -> Holder {
        Holder {
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            pid: std::process::id(),
            command: command.to_string(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`airlock {}` (pid {} on {})",
            self.command, self.pid, self.host
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    holder: Holder,
    ttl_seconds: u64,
    /// The holder's clock when it took the lease: for people, not for expiry.
    taken: jiff::Timestamp,
    /// The process that wrote the claim, where it could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<Process>,
}

/// A process, named so that another process can tell whether it still runs: only one of the
/// same kernel boot and PID namespace can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Process {
    /// /proc/sys/kernel/random/boot_id: random at each boot of each machine.
    boot: String,
    /// /proc/self/ns/pid's link (`pid:[4026531836]`): containers have their own.
    pid_namespace: String,
    pid: u32,
}

impl Process {
    /// This process, read from /proc once: neither changes while it runs.
    fn this() -> Option<Process> {
        static THIS: std::sync::OnceLock<Option<Process>> = std::sync::OnceLock::new();
        THIS.get_or_init(Process::read).clone()
    }

    fn read() -> Option<Process> {
        let boot = crate::storage::read_limited_text(
            std::path::Path::new("/proc/sys/kernel/random/boot_id"),
            64,
            "the boot ID",
        )
        .ok()?;
        let pid_namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(Process {
            boot: boot.trim().to_string(),
            pid_namespace: pid_namespace.to_string_lossy().into_owned(),
            pid: std::process::id(),
        })
    }

    /// Whether this process is known to have ended: it ran here (same boot, same PID
    /// namespace) and its PID is free. A PID in use (again), or not ours to tell, counts as
    /// running.
    fn ended(&self) -> bool {
        let Some(here) = Process::this() else {
            return false;
        };
        if (&here.boot, &here.pid_namespace) != (&self.boot, &self.pid_namespace) {
            return false;
        }
        let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("{bucket} is being changed by {holder}, since {taken}")]
    Held {
        bucket: String,
        holder: Holder,
        taken: jiff::Timestamp,
    },
    #[error("lost the lease on {bucket}: {reason}")]
    Lost { bucket: String, reason: String },
    #[error("{bucket} does not list {key} just after it was written")]
    Inconsistent { bucket: String, key: String },
    #[error(transparent)]
    Bucket(#[from] BucketError),
}

impl Hint for LeaseError {
    fn hint(&self) -> Option<&'static str> {
        match self {
            LeaseError::Held { .. } => Some(
                "another writer is at work on the bucket: run again when it is done (the lease of a writer that died expires within a minute; on this machine it is removed at once)",
            ),
            LeaseError::Lost { .. } => Some(
                "nothing was switched: the frontends serve what was published before; run the command again",
            ),
            LeaseError::Inconsistent { .. } => Some(
                "airlock needs an object store that lists what was just written (AWS S3, Ceph RGW, MinIO and Garage do)",
            ),
            LeaseError::Bucket(e) => e.hint(),
        }
    }
}

#[derive(Debug)]
struct Renewal {
    last: Instant,
    lost: Option<String>,
}

/// The lease, held until [`Lease::release`] (or until the process dies and it expires).
#[derive(Debug)]
pub struct Lease {
    bucket: Bucket,
    key: String,
    ttl: Duration,
    renewal: Arc<Mutex<Renewal>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes the lease, trying again for `settings.wait` while another writer holds it; then
    /// says who holds it.
    pub async fn take(
        bucket: &Bucket,
        holder: Holder,
        settings: LeaseSettings,
    ) -> Result<Lease, LeaseError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match Lease::try_take(bucket, holder.clone(), settings).await {
                Err(LeaseError::Held { .. }) if started.elapsed() + pause <= settings.wait => {
                    let jittered = pause.mul_f64(0.5 + rand::random::<f64>());
                    tokio::time::sleep(jittered).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                result => return result,
            }
        }
    }

    /// One try: the lease, or who holds it.
    async fn try_take(
        bucket: &Bucket,
        holder: Holder,
        settings: LeaseSettings,
    ) -> Result<Lease, LeaseError> {
        let now = jiff::Timestamp::now();
        let key = format!(
            "{CLAIMS}{:013}-{:016x}.json",
            now.as_millisecond(),
            rand::random::<u64>()
        );
        let claim = Claim {
            holder,
            ttl_seconds: settings.ttl.as_secs().max(1),
            taken: now,
            process: Process::this(),
        };
        let body = Bytes::from(serde_json::to_vec(&claim).expect("a claim serialises"));
        bucket.create(&key, body.clone()).await?;

        match rival(bucket, &key).await {
            Ok(None) => {}
            Ok(Some(held)) => {
                withdraw(bucket, &key).await;
                return Err(held);
            }
            Err(e) => {
                withdraw(bucket, &key).await;
                return Err(e);
            }
        }

        let renewal = Arc::new(Mutex::new(Renewal {
            last: Instant::now(),
            lost: None,
        }));
        let renewer = tokio::spawn(renew(
            bucket.clone(),
            key.clone(),
            body,
            settings.ttl,
            renewal.clone(),
        ));
        Ok(Lease {
            bucket: bucket.clone(),
            key,
            ttl: settings.ttl,
            renewal,
            renewer,
        })
    }

    /// Checks that the lease is still held, just before a switch others will see.
    pub async fn confirm(&self) -> Result<(), LeaseError> {
        let lost = |reason: String| LeaseError::Lost {
            bucket: self.bucket.label().to_string(),
            reason,
        };
        {
            let renewal = self.renewal.lock().expect("renewal lock");
            if let Some(reason) = &renewal.lost {
                return Err(lost(reason.clone()));
            }
            if renewal.last.elapsed() > self.ttl {
                return Err(lost(format!(
                    "the claim was not renewed for {} s, longer than its time to live",
                    renewal.last.elapsed().as_secs()
                )));
            }
        }
        if self.bucket.head(&self.key).await?.is_none() {
            return Err(lost(format!(
                "{} was removed by another writer that judged it expired",
                self.key
            )));
        }
        Ok(())
    }

    /// The object store's clock when the claim was last written, at most a quarter of its time
    /// to live ago: ages of objects judged against it depend on no writer's clock, and come
    /// out too young rather than too old.
    pub async fn server_time(&self) -> Result<jiff::Timestamp, LeaseError> {
        match self.bucket.head(&self.key).await? {
            Some(info) => Ok(info.modified),
            None => Err(LeaseError::Lost {
                bucket: self.bucket.label().to_string(),
                reason: format!(
                    "{} was removed by another writer that judged it expired",
                    self.key
                ),
            }),
        }
    }

    /// Gives the lease back.
    pub async fn release(self) -> Result<(), LeaseError> {
        self.renewer.abort();
        self.bucket.delete(&self.key).await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Without a release (an error on the way), the claim stays until it expires.
        self.renewer.abort();
    }
}

/// The live claim of another writer, if any; removes the expired ones it meets.
async fn rival(bucket: &Bucket, mine: &str) -> Result<Option<LeaseError>, LeaseError> {
    let claims = bucket.list(CLAIMS).await?;
    let Some(me) = claims.iter().find(|c| c.key == mine) else {
        return Err(LeaseError::Inconsistent {
            bucket: bucket.label().to_string(),
            key: mine.to_string(),
        });
    };
    let mut held = None;
    for other in claims.iter().filter(|c| c.key != mine) {
        let Some(claim) = read_claim(bucket, other).await? else {
            continue; // withdrawn or released since the list
        };
        let silent = me.modified.duration_since(other.modified);
        let ttl = jiff::SignedDuration::from_secs(claim.ttl_seconds.min(i64::MAX as u64) as i64);
        if silent > ttl {
            tracing::info!(
                "{}: removing the expired lease of {} (last renewed {} before this claim)",
                bucket.label(),
                claim.holder,
                silent
            );
            bucket.delete(&other.key).await?;
        } else if claim.process.as_ref().is_some_and(Process::ended) {
            tracing::info!(
                "{}: removing the lease of {}, which no longer runs on this machine",
                bucket.label(),
                claim.holder
            );
            bucket.delete(&other.key).await?;
        } else if held.is_none() {
            held = Some(LeaseError::Held {
                bucket: bucket.label().to_string(),
                holder: claim.holder,
                taken: claim.taken,
            });
        }
    }
    Ok(held)
}

/// A claim's content; one that does not parse is still a claim, of an unknown writer.
async fn read_claim(bucket: &Bucket, info: &ObjectInfo) -> Result<Option<Claim>, LeaseError> {
    let Some((bytes, _)) = bucket.get(&info.key, CLAIM_LIMIT).await? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        Claim {
            holder: Holder {
                host: "?".into(),
                pid: 0,
                command: format!("? ({} is not a claim airlock wrote)", info.key),
            },
            ttl_seconds: LeaseSettings::default().ttl.as_secs(),
            taken: info.modified,
            process: None,
        }
    })))
}

async fn withdraw(bucket: &Bucket, key: &str) {
    if let Err(e) = bucket.delete(key).await {
        // It expires on its own; only the next writer's first minute is lost.
        tracing::warn!("{}", crate::hint::Chain(&e));
    }
}

/// Rewrites the claim every quarter of its time to live until aborted; stops for good when
/// the claim is gone (another writer judged it expired: writing it again would take the lease
/// back behind that writer's back).
async fn renew(
    bucket: Bucket,
    key: String,
    body: Bytes,
    ttl: Duration,
    renewal: Arc<Mutex<Renewal>>,
) {
    let every = ttl / 4;
    loop {
        tokio::time::sleep(every).await;
        match bucket.head(&key).await {
            Ok(None) => {
                renewal.lock().expect("renewal lock").lost = Some(format!(
                    "{key} was removed by another writer that judged it expired"
                ));
                return;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::warn!("renewing the lease: {}", crate::hint::Chain(&e));
                continue;
            }
        }
        match bucket.put(&key, body.clone()).await {
            Ok(_) => renewal.lock().expect("renewal lock").last = Instant::now(),
            Err(e) => tracing::warn!("renewing the lease: {}", crate::hint::Chain(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_has_ended_only_when_it_ran_here_and_its_pid_is_free() {
        let me = Process::this().expect("Linux names the boot and the PID namespace");
        assert!(!me.ended(), "this process runs");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Process { pid, ..me.clone() };
        assert!(gone.ended());
        // Elsewhere (another machine, a reboot, another container), nothing can be told.
        let elsewhere = Process {
            boot: "0f2c5d3e-0000-4000-8000-000000000000".into(),
            ..gone.clone()
        };
        assert!(!elsewhere.ended());
        let other_namespace = Process {
            pid_namespace: "pid:[1]".into(),
            ..gone
        };
        assert!(!other_namespace.ended());
    }
}
