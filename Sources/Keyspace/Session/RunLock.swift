import Foundation
import SlotdiffCore

/// One run per output: a lock file beside what a run writes (`NAME.lock` beside the diff log and
/// its checkpoint, `DIR/watch.lock` for a watch), so that a second run on the same outputs — a
/// retried pod while the old one still terminates, an overlapping cron job, a command run twice —
/// is refused before it writes anything, instead of interleaving two logs and checkpoints.
///
/// The file is created with O_CREAT|O_EXCL and holds JSON naming the holder:
///
///     {"flock":true,"heartbeat":"…","host":"pod-7","pid":42,"started":"…","token":"…"}
///
/// While the run lives it keeps the file open with `flock(LOCK_EX)` (a run that dies, however it
/// dies, loses that at once) and rewrites `heartbeat` every `heartbeatInterval` (a monotonic
/// timer). A lock is taken over, with a warning, only when its holder is known to be gone:
/// - its flock can be taken, and the holder said it held one, on this host or on a local file
///   system (which only this kernel's processes can reach);
/// - or its holder ran on this host and its pid no longer exists (ESRCH);
/// - or no heartbeat (the later of the file's `heartbeat` and its modification time) for
///   `staleAfter`: the rule for a holder on another host, or a file system without flock.
/// A flock held by someone else always means a live holder: refused. `--force-unlock` removes
/// any lock, with a warning; a run whose lock was removed or taken stops at its next heartbeat
/// (exit 2) rather than write to outputs that are no longer its own.
// Unchecked: the holder record and `released` change only under `mutex`, from the caller and
// the heartbeat timer's queue; the file descriptor is immutable.
public final class RunLock: @unchecked Sendable {
    static let heartbeatInterval: TimeInterval = 5
    static let staleAfter: TimeInterval = 30

    /// What the lock file holds.
    struct Holder: Codable {
        var host: String
        var pid: Int32
        var started: Date
        var heartbeat: Date
        /// Whether the holder holds the file's flock (false on a file system without flock).
        var flock: Bool
        /// This run's own mark, so it can tell its lock from one written over it.
        var token: String

        /// "host H, pid P, since S" for messages.
        var named: String { "host \(host), pid \(pid), since \(RunLock.format(started))" }
    }

    let path: String
    private let fd: Int32
    private var holder: Holder
    private let mutex = NSLock()
    private var released = false
    private var timer: DispatchSourceTimer?

    private init(path: String, fd: Int32, holder: Holder) {
        self.path = path
        self.fd = fd
        self.holder = holder
    }

    static func format(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func encode(_ h: Holder) -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        enc.dateEncodingStrategy = .iso8601
        return ((try? enc.encode(h)) ?? Data()) + Data("\n".utf8)
    }

    static func decode(_ d: Data) -> Holder? {
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        return try? dec.decode(Holder.self, from: d)
    }

    /// Takes the lock at `path` for `what` ("the diff log (--out) x.jsonl.zst", named in the
    /// refusal), or throws `SlotdiffError` naming the run that holds it. `force` removes a lock
    /// held by anyone. Warnings (a lock taken over or removed) go to `warn`.
    public static func acquire(
        path: String, what: String, force: Bool,
        warn: (String) -> Void = { FileHandle.standardError.write(Data("slotdiff: warning: \($0)\n".utf8)) }
    ) throws -> RunLock {
        var forced = false
        // A few rounds: a lock released or replaced between two steps is looked at again.
        for _ in 0..<20 {
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                // Another run looking at this new, still empty file holds its flock for a moment.
                var flocked = false
                for _ in 0..<50 {
                    let r = tryFlock(fd)
                    if r == .held { usleep(20_000); continue }
                    flocked = r == .taken
                    break
                }
                return try start(path: path, fd: fd, flocked: flocked, created: true, what: what)
            }
            if errno != EEXIST { throw SlotdiffError(.io, "cannot create the lock \(path) for \(what): \(Outputs.reason())") }

            let efd = open(path, O_RDWR | O_CLOEXEC)
            if efd < 0 {
                if errno == ENOENT { continue }
                throw SlotdiffError(.io, "cannot open the lock \(path) for \(what): \(Outputs.reason())")
            }
            // A lock just created, or being rewritten, may read empty or torn for a moment: read
            // again for up to a second, not holding its flock meanwhile (its creator wants it).
            var lockState = FlockResult.unsupported
            var content = Data()
            var found: Holder?
            for attempt in 0..<25 {
                if attempt > 0 {
                    if lockState == .taken { _ = flock(efd, LOCK_UN) }
                    usleep(40_000)
                }
                lockState = tryFlock(efd)
                content = readAll(efd)
                found = decode(content)
                if found != nil || !sameFile(efd, path) { break }
            }
            // The path may have been released (unlinked) or replaced since it was opened.
            guard sameFile(efd, path) else { close(efd); continue }
            let age = Date().timeIntervalSince(max(found?.heartbeat ?? .distantPast, modified(efd)))

            if force && !forced {
                warn("--force-unlock: removing the lock \(path)" + (found.map { " of the run on \($0.named)" } ?? ""))
                unlink(path)
                close(efd)
                forced = true
                continue
            }
            guard let h = found else {
                if !content.isEmpty {
                    close(efd)
                    throw SlotdiffError(
                        .usage, "the lock \(path) for \(what) exists but is not a slotdiff lock; it is never overwritten: remove it or write elsewhere")
                }
                // Empty: a run died between creating and writing it, or is writing it now.
                if lockState != .held && age > staleAfter {
                    warn("took over the lock \(path): empty, left by a run that died as it started (unchanged for \(Int(age)) s)")
                    return try start(path: path, fd: efd, flocked: lockState == .taken, what: what)
                }
                close(efd)
                throw SlotdiffError(
                    .usage, "\(what) is in use by another run that is starting (lock \(path)); if no run uses it, run again with --force-unlock")
            }
            let sameHost = h.host == hostName
            var gone: String?
            if lockState == .held {
                gone = nil
            } else if lockState == .taken && h.flock && (sameHost || localFileSystem(efd)) {
                gone = "its flock was released: the process ended"
            } else if sameHost && h.pid > 0 && kill(h.pid, 0) != 0 && errno == ESRCH {
                gone = "pid \(h.pid) no longer runs on this host"
            } else if age > staleAfter {
                gone = "no heartbeat for \(Int(age)) s"
            }
            guard let reason = gone else {
                close(efd)
                throw SlotdiffError(
                    .usage,
                    "\(what) is in use by another run: \(h.named), last heartbeat \(Int(max(0, age))) s ago (lock \(path)). "
                        + "Two runs on one log would corrupt it: wait for that run to end; if it is gone, run again with --force-unlock")
            }
            warn("took over the lock \(path) of a run that is gone (\(h.named)): \(reason)")
            let lock = try start(path: path, fd: efd, flocked: lockState == .taken, what: what)
            if lockState != .taken {
                // Without flock, two runs taking over at once both write: the one whose mark
                // stays is the holder.
                usleep(300_000)
                if let now = decode(readAll(efd)), now.token != lock.holder.token {
                    lock.abandon()
                    throw SlotdiffError(.usage, "\(what) is in use by another run: \(now.named) took over the lock \(path) at the same time")
                }
            }
            return lock
        }
        throw SlotdiffError(.io, "cannot take the lock \(path) for \(what): it keeps changing; another run is starting or ending")
    }

    /// Writes this run's content into a lock file it has opened and starts the heartbeat.
    private static func start(path: String, fd: Int32, flocked: Bool, created: Bool = false, what: String) throws -> RunLock {
        let now = Date()
        let h = Holder(host: hostName, pid: getpid(), started: now, heartbeat: now, flock: flocked, token: UUID().uuidString)
        let lock = RunLock(path: path, fd: fd, holder: h)
        guard lock.rewrite() else {
            let e = Outputs.reason()
            if created { unlink(path) }
            lock.abandon()
            throw SlotdiffError(.io, "cannot write the lock \(path) for \(what): \(e)")
        }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "slotdiff.lock.heartbeat"))
        t.schedule(deadline: .now() + heartbeatInterval, repeating: heartbeatInterval)
        t.setEventHandler { [weak lock] in lock?.beat() }
        lock.timer = t
        t.resume()
        return lock
    }

    /// One heartbeat: the lock must still be this run's (the same file at the path, with this
    /// run's mark); then its heartbeat is now. A run whose lock is gone stops at once: its
    /// outputs belong to the run that took them.
    private func beat() {
        mutex.lock()
        defer { mutex.unlock() }
        if released { return }
        let current = Self.sameFile(fd, path) ? Self.decode(Self.readAll(fd)) : nil
        guard let current, current.token == holder.token else {
            let who = current.map { " by the run on \($0.named)" } ?? " (removed)"
            FileHandle.standardError.write(Data("slotdiff: error: the lock \(path) was taken\(who); this run stops at once without writing more\n".utf8))
            Foundation.exit(2)
        }
        holder.heartbeat = Date()
        if !rewrite() {
            FileHandle.standardError.write(Data("slotdiff: warning: cannot refresh the lock \(path): \(Outputs.reason())\n".utf8))
        }
    }

    private func rewrite() -> Bool {
        let data = Self.encode(holder)
        let n = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard n == data.count else { return false }
        return ftruncate(fd, off_t(data.count)) == 0
    }

    /// Removes the lock (when it is still this run's) and lets go of it. Safe to call twice.
    public func release() {
        mutex.lock()
        defer { mutex.unlock() }
        if released { return }
        released = true
        timer?.cancel()
        if Self.sameFile(fd, path), let current = Self.decode(Self.readAll(fd)), current.token == holder.token {
            unlink(path)
        }
        close(fd)
    }

    /// Lets go of the file without removing it (it is not, or no longer, this run's).
    private func abandon() {
        mutex.lock()
        defer { mutex.unlock() }
        if released { return }
        released = true
        timer?.cancel()
        close(fd)
    }

    deinit { release() }

    enum FlockResult { case taken, held, unsupported }

    private static func tryFlock(_ fd: Int32) -> FlockResult {
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return .taken }
            if errno == EINTR { continue }
            return errno == EWOULDBLOCK || errno == EAGAIN ? .held : .unsupported
        }
    }

    /// A file system on a local disk or in memory: every process that can open a file on it
    /// runs on this kernel, so a free flock there means its holder has ended, whatever host
    /// name it gave (a pod on the same node). On a network file system a flock may not reach
    /// other clients (or may outlive a lost one), so the heartbeat decides there.
    private static func localFileSystem(_ fd: Int32) -> Bool {
        #if os(Linux)
            // The type of the mount whose device holds the file, from /proc/self/mountinfo:
            // "36 35 98:0 /root /mnt rw,noatime shared:1 - ext4 /dev/vda1 rw".
            var st = stat()
            guard fstat(fd, &st) == 0, let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
            let dev = UInt64(st.st_dev)
            let device = "\((dev >> 8) & 0xfff | (dev >> 32) & ~0xfff):\(dev & 0xff | (dev >> 12) & ~0xff)"
            let local: Set<String> = ["ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "f2fs", "zfs"]
            var types: Set<String> = []
            for line in info.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count > 2, fields[2] == device, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
                types.insert(String(fields[dash + 1]))
            }
            return !types.isEmpty && types.isSubset(of: local)
        #else
            return false
        #endif
    }

    /// The open file is still the one at `path` (not unlinked or replaced).
    private static func sameFile(_ fd: Int32, _ path: String) -> Bool {
        var a = stat(), b = stat()
        return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    private static func modified(_ fd: Int32) -> Date {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .distantPast }
        #if os(Linux)
            let t = st.st_mtim
        #else
            let t = st.st_mtimespec
        #endif
        return Date(timeIntervalSince1970: Double(t.tv_sec) + Double(t.tv_nsec) / 1e9)
    }

    private static func readAll(_ fd: Int32) -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        var off: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
            off += off_t(n)
            if out.count > 1 << 16 { break }
        }
        return out
    }
}

/// The locks of one run, released together.
public struct RunLocks {
    private var locks: [RunLock] = []

    /// The lock files of a check's outputs, with what each guards (for messages): beside the
    /// log (unless it is a device such as /dev/null, which two runs may share) and beside the
    /// checkpoint. One file when they lie beside each other (the default), two when
    /// `--checkpoint` lies elsewhere, so that two runs sharing either one are refused.
    public static func targets(log: (path: String, what: String), checkpoint: (path: String, what: String)?) -> [(path: String, what: String)] {
        var out: [(path: String, what: String)] = []
        if !Outputs.isCharacterDevice(log.path) { out.append((CheckOutputs.base(log.path) + ".lock", log.what)) }
        if let checkpoint {
            let suffix = ".checkpoint.json"
            let c = checkpoint.path
            let p = (c.hasSuffix(suffix) ? String(c.dropLast(suffix.count)) : c) + ".lock"
            if !out.contains(where: { FileIdentity.normalized($0.path) == FileIdentity.normalized(p) }) { out.append((p, checkpoint.what)) }
        }
        return out
    }

    /// Takes every lock in `targets` (path, what it guards) or none.
    public static func acquire(_ targets: [(path: String, what: String)], force: Bool) throws -> RunLocks {
        var held = RunLocks()
        do {
            for t in targets { held.locks.append(try RunLock.acquire(path: t.path, what: t.what, force: force)) }
        } catch {
            held.release()
            throw error
        }
        return held
    }

    public func release() { for l in locks.reversed() { l.release() } }
}
