//! The key directory on disk: `*.pem` files and the lifecycle record `keyring.toml`, with the
//! ownership and permission checks that make them trustworthy. All key-directory I/O is here;
//! [`lifecycle`](super::lifecycle) holds the pure transitions.

use crate::keys::error::KeyError;
use crate::keys::lifecycle::{KeyringState, Policy, Promotion, Rotation, STATE_FILE, is_plain_file_name};
use crate::keys::signing::SigningKey;
use crate::token::jwk::thumbprint;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey as DalekSigningKey;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

impl KeyringState {
    /// Reads `dir/keyring.toml`; `None` when the directory or the record does not exist (every
    /// key published, the newest signing).
    ///
    /// The record decides which keys are published and which signs, so it is trusted as the
    /// keys are: the directory and the record may be changed by their owner alone (this user or
    /// root), a link to the record must stay inside the directory, and every record's `file`
    /// must be a plain file name in it.
    ///
    /// # Errors
    ///
    /// When the record exists and cannot be read or parsed, others can change it or its
    /// directory, it links out of the directory, or a record names something other than a
    /// plain file name.
    pub fn load(dir: &Path) -> Result<Option<Self>, KeyError> {
        match trusted_dir(dir, Reader::Process) {
            Ok(dir) => Self::load_in(&dir),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// As [`KeyringState::load`], in a directory [`trusted_dir`] has checked.
    pub(crate) fn load_in(dir: &TrustedDir) -> Result<Option<Self>, KeyError> {
        let path = dir.path.join(STATE_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(KeyError::Io { path, source: e }),
        }
        let target = resolve_entry(dir, &path)?;
        let text = read_trusted(&target, dir.uid)?;
        let state: Self =
            toml::from_str(&text).map_err(|source| KeyError::RecordParse { path: path.clone(), source })?;
        if let Some(bad) = state.keys.iter().find(|k| !is_plain_file_name(&k.file)) {
            return Err(KeyError::NotAPlainFileName { record: path, file: bad.file.clone() });
        }
        Ok(Some(state))
    }

    /// Writes `dir/keyring.toml` atomically.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let text = format!(
            "# Signing-key lifecycle, managed by `keysmith keys`. No secrets here: the private keys are the *.pem files.\n{}",
            toml::to_string_pretty(self).map_err(KeyError::RecordEncode)?
        );
        let path = dir.join(STATE_FILE);
        crate::config::write_atomically(&path, &text)
            .map_err(|e| KeyError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
        // Loading refuses a record others can change: never leave one behind under a lax umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let io = |source| KeyError::Io { path: path.clone(), source };
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
            if mode & 0o022 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o022 & 0o777)).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Generates a key into `dir` and records it as next (published from now on).
    ///
    /// # Errors
    ///
    /// When the key cannot be written.
    pub fn add_next(&mut self, dir: &Path, now: DateTime<Utc>) -> Result<String, KeyError> {
        let (path, kid) = generate_key_file(dir, now)?;
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        self.push_next(kid.clone(), file, now);
        Ok(kid)
    }

    /// Promotes the next key (see [`KeyringState::promote`]) and generates a new next key
    /// into `dir`. The caller saves the record, then deletes nothing: retired keys stay.
    ///
    /// # Errors
    ///
    /// [`KeyError::Transition`] with [`LifecycleError::NoNext`](crate::keys::LifecycleError::NoNext)
    /// or [`LifecycleError::TooSoon`](crate::keys::LifecycleError::TooSoon) (nothing changes), or the new
    /// key cannot be written.
    pub fn rotate(
        &mut self,
        dir: &Path,
        policy: Policy,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<Rotation, KeyError> {
        let Promotion { retired, activated } = self.promote(policy, now, force)?;
        let next = self.add_next(dir, now)?;
        Ok(Rotation { retired, activated, next })
    }
}

/// The `*.pem` entries of the trusted, canonical directory `dir`, sorted by name.
pub(super) fn pem_paths(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| KeyError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The key files of `dir`, oldest first, with their key ids.
///
/// # Errors
///
/// As [`Keyring::load_dir`].
pub(crate) fn key_files(dir: &Path) -> Result<Vec<(String, String)>, KeyError> {
    let dir = trusted_dir(dir, Reader::Process)?;
    pem_paths(&dir.path)?
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            load_pem_in(&dir, p).map(|(k, _)| (name, k.kid().to_owned()))
        })
        .collect()
}

/// Loads the key file `path`, an entry of the trusted directory `dir`, with its modification
/// time.
pub(super) fn load_pem_in(dir: &TrustedDir, path: &Path) -> Result<(SigningKey, Option<DateTime<Utc>>), KeyError> {
    let target = resolve_entry(dir, path)?;
    load_pem_as(&target, dir.uid)
}

/// Loads a key file given on its own (`--signing-key-file`), checked for this process's user.
pub(super) fn load_pem(path: &Path) -> Result<(SigningKey, Option<DateTime<Utc>>), KeyError> {
    load_pem_as(path, effective_uid())
}

fn load_pem_as(path: &Path, me: u32) -> Result<(SigningKey, Option<DateTime<Utc>>), KeyError> {
    use std::io::Read as _;
    // Check and read the same open file, so it cannot be swapped in between.
    let mut file = fs::File::open(path).map_err(|e| KeyError::io(path, e))?;
    let meta = file.metadata().map_err(|e| KeyError::io(path, e))?;
    check_permissions(path, &meta, me)?;
    let mut pem = Zeroizing::new(String::new());
    file.read_to_string(&mut pem).map_err(|e| KeyError::io(path, e))?;
    let key = crate::keys::pem::decode(&pem, path)?;
    Ok((SigningKey::new(&key), file_time(&meta)))
}

/// When a file came to be as it is: the later of its modification time, which `touch`,
/// `cp -p` and `tar x` can set to any past instant, and its status-change time (ctime), which
/// no one can backdate.
fn file_time(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    let modified = meta.modified().ok().map(DateTime::<Utc>::from);
    modified.max(changed_time(meta))
}

#[cfg(unix)]
fn changed_time(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    use std::os::unix::fs::MetadataExt as _;
    let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(meta.ctime(), nanos)
}

#[cfg(not(unix))]
fn changed_time(_meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    None
}

/// Resolves the key directory (following a symlink to it) and checks that only its owner,
/// this user or root, can change it.
///
/// # Errors
///
/// [`KeyError::Io`] (`NotFound` when it does not exist), [`KeyError::WritableByOthers`] or
/// [`KeyError::UntrustedOwner`].
pub(crate) fn trusted_dir(dir: &Path, reader: Reader) -> Result<TrustedDir, KeyError> {
    let path = fs::canonicalize(dir).map_err(|e| KeyError::io(dir, e))?;
    let me = effective_uid();
    #[cfg(unix)]
    let uid = {
        use std::os::unix::fs::MetadataExt as _;
        // One look at the directory decides whose view the whole load takes.
        let meta = fs::metadata(&path).map_err(|e| KeyError::io(&path, e))?;
        let uid = match reader {
            Reader::OwnerIfRoot if me == 0 => meta.uid(),
            _ => me,
        };
        check_not_writable_by_others(&path, meta.mode(), meta.uid(), uid, || Mount::of_path(&path))?;
        uid
    };
    #[cfg(not(unix))]
    let uid = {
        let _ = reader;
        me
    };
    Ok(TrustedDir { path, uid })
}

/// Whose view a key store is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// This process's user: the service, and every command that writes keys.
    Process,
    /// When this process runs as root, the key directory's owner; otherwise this process's
    /// user. Only for commands that sign outside the service (`keysmith mint`, `apikey
    /// create`): root runs them on a host where the service's user owns the keys and root the
    /// config. Checking as that owner accepts what the service itself accepts, so root never
    /// trusts a file the service would refuse (a group-readable key is refused outright, since
    /// the owner's groups are not known here). Writing stays the owner's alone
    /// ([`create_private_dir`]).
    OwnerIfRoot,
}

/// A canonical key directory that passed [`trusted_dir`], with the user whose view the rest of
/// the load takes.
#[derive(Debug, Clone)]
pub(crate) struct TrustedDir {
    /// The canonical path.
    path: PathBuf,
    /// The user the entries must belong to (or to root).
    uid: u32,
}

impl TrustedDir {
    /// The canonical path. Only [`trusted_dir`] makes a `TrustedDir`, so holding one means the
    /// checks ran.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
fn effective_uid() -> u32 {
    0
}

/// Where the entry `path` of the trusted, canonical directory `dir` leads: itself, or for a
/// symlink its target, which must lie inside `dir` and be reached through directories only
/// their owner can change (a Kubernetes Secret's `key.pem -> ..data/key.pem`,
/// `..data -> ..2026_…` qualifies).
///
/// # Errors
///
/// [`KeyError::OutsideDirectory`], or as [`trusted_dir`] for a directory on the way.
pub(crate) fn resolve_entry(trusted: &TrustedDir, path: &Path) -> Result<PathBuf, KeyError> {
    let (dir, me) = (trusted.path(), trusted.uid);
    let meta = fs::symlink_metadata(path).map_err(|e| KeyError::io(path, e))?;
    if !meta.file_type().is_symlink() {
        return Ok(path.to_owned());
    }
    let target = fs::canonicalize(path).map_err(|e| KeyError::io(path, e))?;
    let outside = || KeyError::OutsideDirectory { link: path.to_owned(), target: target.clone(), dir: dir.to_owned() };
    let inside = target.strip_prefix(dir).map_err(|_| outside())?;
    let mut through = dir.to_owned();
    let mut components = inside.components().peekable();
    while let Some(component) = components.next() {
        if components.peek().is_none() {
            break; // the target itself: the caller checks the file
        }
        through.push(component);
        check_dir(&through, me)?;
    }
    Ok(target)
}

/// Opens a file given on its own that is trusted as the key store is, such as the gate's JWKS
/// file (whoever can change it can add a key): the directory holding it (after following
/// symlinks to that directory), every directory a symlink at `path` leads through, and the file
/// opened may be changed by their owner alone, who must be this process's user or root. Write
/// bits are excused on a read-only tmpfs only ([`Mount::excuses_write_bits`]: a Kubernetes
/// Secret or projected volume). A symlink at `path` must lead inside its directory, as a
/// Secret's or a projected volume's `jwks.json -> ..data/jwks.json` does.
///
/// The file is checked on the handle returned (its metadata is returned with it), so it cannot
/// be swapped between the check and the read. A symlink swapped while it is resolved (a volume
/// update removes the old version) is resolved again.
///
/// # Errors
///
/// [`KeyError::Io`] when the file or a directory cannot be looked at or opened;
/// [`KeyError::WritableByOthers`], [`KeyError::UntrustedOwner`] or
/// [`KeyError::OutsideDirectory`].
#[allow(dead_code)] // the gate's alone: a build without the `gate` feature has no caller
pub(crate) fn open_trusted_file(path: &Path) -> Result<(fs::File, fs::Metadata), KeyError> {
    const ATTEMPTS: usize = 3;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        KeyError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a path to a file"))
    })?;
    let attempt = || -> Result<(fs::File, fs::Metadata), KeyError> {
        // The directory as a key directory is checked, for this process's user.
        let dir = trusted_dir(parent, Reader::Process)?;
        let target = resolve_entry(&dir, &dir.path().join(name))?;
        let me = dir.uid;
        let file = fs::File::open(&target).map_err(|e| KeyError::io(&target, e))?;
        let meta = file.metadata().map_err(|e| KeyError::io(&target, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            check_not_writable_by_others(&target, meta.mode(), meta.uid(), me, || Mount::of_file(&file))?;
        }
        Ok((file, meta))
    };
    let mut tries = 1;
    loop {
        match attempt() {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && tries < ATTEMPTS => {
                tries += 1;
            }
            done => return done,
        }
    }
}

/// A directory of keys may be changed by its owner alone, who must be `me` or root.
#[cfg(unix)]
fn check_dir(path: &Path, me: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path).map_err(|e| KeyError::io(path, e))?;
    check_not_writable_by_others(path, meta.mode(), meta.uid(), me, || Mount::of_path(path))
}

/// What the file system holding a key-store entry says about its write bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Mounted read-only.
    pub(crate) read_only: bool,
    /// A tmpfs (Linux `TMPFS_MAGIC`), which no other view of the host can write.
    pub(crate) tmpfs: bool,
}

#[cfg(unix)]
impl Mount {
    /// `f_type` of a tmpfs, from `linux/magic.h`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const TMPFS_MAGIC: i64 = 0x0102_1994;

    /// Write bits mean nothing on a read-only tmpfs: a Kubernetes Secret volume is one, whose
    /// root shows mode 1777. A read-only bind or hostPath mount is not enough: others may
    /// write through the host's writable view of the same directory.
    pub(crate) fn excuses_write_bits(self) -> bool {
        self.read_only && self.tmpfs
    }

    pub(crate) fn of_path(path: &Path) -> Self {
        let read_only =
            rustix::fs::statvfs(path).is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
        Self { read_only, tmpfs: Self::is_tmpfs(rustix::fs::statfs(path)) }
    }

    fn of_file(file: &fs::File) -> Self {
        let read_only =
            rustix::fs::fstatvfs(file).is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
        Self { read_only, tmpfs: Self::is_tmpfs(rustix::fs::fstatfs(file)) }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[allow(clippy::useless_conversion)] // `f_type` is i64 on some targets, narrower on others
    fn is_tmpfs(fs: rustix::io::Result<rustix::fs::StatFs>) -> bool {
        fs.is_ok_and(|fs| i64::from(fs.f_type) == Self::TMPFS_MAGIC)
    }

    /// Elsewhere no file system is known to be a tmpfs: fail closed.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn is_tmpfs<T>(_fs: T) -> bool {
        false
    }
}

#[cfg(not(unix))]
fn check_dir(_path: &Path, _me: u32) -> Result<(), KeyError> {
    Ok(())
}

/// Only the owner, this user or root, may change `path` (a key directory or the record);
/// write bits are excused only on a read-only tmpfs ([`Mount::excuses_write_bits`]).
#[cfg(unix)]
pub(crate) fn check_not_writable_by_others(
    path: &Path,
    mode: u32,
    owner: u32,
    me: u32,
    mount: impl FnOnce() -> Mount,
) -> Result<(), KeyError> {
    if mode & 0o022 != 0 && !mount().excuses_write_bits() {
        return Err(KeyError::WritableByOthers { path: path.to_owned(), mode: mode & 0o7777 });
    }
    if owner != me && owner != 0 {
        return Err(KeyError::UntrustedOwner { path: path.to_owned(), owner, me });
    }
    Ok(())
}

/// A private key file must be readable by its owner alone, and owned by `me` (this process's
/// user, or the directory's owner root signs for: [`Reader::OwnerIfRoot`]).
#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata, me: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // Acting for another user (root for the directory's owner), whose groups are unknown here:
    // no group may read (`gid_t` -1 is no group).
    let my_group = if me == effective_uid() { rustix::process::getegid().as_raw() } else { u32::MAX };
    check_mode_and_owner(path, meta.permissions().mode(), (meta.uid(), meta.gid()), (me, my_group))?;
    // Another name for the same file, elsewhere, escapes every check made on this directory.
    if meta.nlink() > 1 {
        return Err(KeyError::HardLinked { path: path.to_owned(), links: meta.nlink() });
    }
    Ok(())
}

/// Only the owner may read a key, and the owner must be this user or root (who can replace any
/// file anyway; Kubernetes mounts Secrets as root). Group read is tolerated only for this
/// process's own group, which is how a Secret mounted with `fsGroup` looks; never group write
/// or anything for others.
#[cfg(unix)]
pub(super) fn check_mode_and_owner(
    path: &Path,
    mode: u32,
    (owner, group): (u32, u32),
    (me, my_group): (u32, u32),
) -> Result<(), KeyError> {
    let mode = mode & 0o777;
    let group_read_ok = mode & 0o070 == 0o040 && group == my_group;
    if mode & 0o007 != 0 || (mode & 0o070 != 0 && !group_read_ok) {
        return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    if owner != me && owner != 0 {
        return Err(KeyError::ForeignOwner { path: path.to_owned(), owner, me });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata, _me: u32) -> Result<(), KeyError> {
    Ok(())
}

/// Generates a key into `dir` (created `0700` if missing) as `<UTC time>-<kid>.pem`, mode `0600`.
/// Returns the path and the key id.
///
/// # Errors
///
/// [`KeyError::Io`] when the directory or file cannot be written.
pub fn generate_key_file(dir: &Path, now: DateTime<Utc>) -> Result<(PathBuf, String), KeyError> {
    create_private_dir(dir)?;
    let key = DalekSigningKey::generate(&mut rand_core::OsRng);
    let kid = thumbprint(&key.verifying_key());
    let pem = crate::keys::pem::encode(&key).map_err(|e| KeyError::io(dir, std::io::Error::other(e.to_string())))?;
    let name = format!("{}-{kid}.pem", now.format("%Y%m%dT%H%M%S%.6fZ"));
    let path = dir.join(name);
    write_private(&path, pem.as_bytes())?;
    Ok((path, kid))
}

/// Creates the key directory `0700` (and its missing parents) if it does not exist, and checks
/// that this process runs as its owner.
///
/// # Errors
///
/// [`KeyError::Io`] when it cannot be created; [`KeyError::NotTheOwner`] when it belongs to
/// another user (root running `keysmith keys rotate` in the service's directory).
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| KeyError::io(dir, e))?;
    // Every writer of keys and of the record comes through here: a file it writes (mode 0600)
    // must stay readable by the service that owns the directory.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let owner = fs::metadata(dir).map_err(|e| KeyError::io(dir, e))?.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(KeyError::NotTheOwner { path: dir.to_owned(), owner, me });
        }
    }
    Ok(())
}

pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| KeyError::io(path, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| KeyError::io(path, e))
}

/// Reads the record, checking on the open file that only its owner (this user or root) can
/// change it.
fn read_trusted(path: &Path, me: u32) -> Result<String, KeyError> {
    use std::io::Read as _;
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = file.metadata().map_err(io)?;
        check_not_writable_by_others(path, meta.mode(), meta.uid(), me, || Mount::of_file(&file))?;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}
