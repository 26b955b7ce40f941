import Foundation
import SlotdiffCore

/// A file a command will write, named for messages ("the diff log (--out)").
public struct OutputFile: Sendable {
    public var what: String
    public var path: String
    /// A character device (/dev/null, /dev/stdout) is accepted: the file is written in place,
    /// never replaced. False for files replaced by renaming (checkpoint, trend).
    public var deviceAllowed = true

    public init(what: String, path: String, deviceAllowed: Bool = true) {
        self.what = what
        self.path = path
        self.deviceAllowed = deviceAllowed
    }
}

/// Which file a path names: the same device and inode when it exists (symlinks and hard links
/// included), otherwise its absolute path with `.`, `..` and its directory's symlinks resolved.
public enum FileIdentity: Equatable, Sendable {
    case inode(UInt64, UInt64)
    case path(String)

    public init(_ path: String) {
        var st = stat()
        if stat(path, &st) == 0 {
            self = .inode(UInt64(st.st_dev), UInt64(st.st_ino))
        } else {
            self = .path(Self.normalized(path))
        }
    }

    public static func normalized(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let std = (absolute as NSString).standardizingPath
        let dir = (std as NSString).deletingLastPathComponent
        guard let real = realpath(dir, nil) else { return std }
        defer { free(real) }
        return (String(cString: real) as NSString).appendingPathComponent((std as NSString).lastPathComponent)
    }
}

/// Checks made before a command reads anything, and writes that fail with the path and the
/// system's reason.
public enum Outputs {
    public static func reason() -> String { String(cString: strerror(errno)) }

    /// Refuses an output that is one of the inputs, or the same file as another output (two
    /// outputs on one character device, such as /dev/null, are fine).
    public static func checkDistinct(_ outputs: [OutputFile], inputs: [(what: String, path: String)]) throws {
        let ids = outputs.map { FileIdentity($0.path) }
        let inputIDs = inputs.map { FileIdentity($0.path) }
        for (o, id) in zip(outputs, ids) {
            if let i = inputIDs.firstIndex(of: id) {
                let input = inputs[i]
                throw SlotdiffError(.usage, "\(o.what) \(o.path) is \(input.what) \(input.path): an input is never overwritten; write the output elsewhere")
            }
        }
        for a in outputs.indices {
            for b in outputs.indices where b > a && ids[a] == ids[b] && !isCharacterDevice(outputs[a].path) {
                throw SlotdiffError(.usage, "\(outputs[a].what) \(outputs[a].path) and \(outputs[b].what) \(outputs[b].path) are the same file")
            }
        }
    }

    public static func isCharacterDevice(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR
    }

    /// The output can be written: an existing path is a regular file (or an accepted character
    /// device) that may be written, a new one lies in an existing directory that may be written
    /// (files replaced by renaming need that in any case). Nothing is created or truncated.
    public static func checkWritable(_ o: OutputFile) throws {
        var st = stat()
        let exists = stat(o.path, &st) == 0
        if !exists && errno != ENOENT {
            throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): \(reason())")
        }
        if exists {
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR { throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): it is a directory") }
            if type == S_IFCHR && o.deviceAllowed {
                if access(o.path, W_OK) != 0 { throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): \(reason())") }
                return
            }
            if type != S_IFREG {
                throw SlotdiffError(
                    .io,
                    "cannot write \(o.what) \(o.path): not a regular file"
                        + (o.deviceAllowed ? "" : " (it is replaced by renaming a new file over it, which is never done to a device or pipe)"))
            }
            if access(o.path, W_OK) != 0 { throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): \(reason())") }
            if o.deviceAllowed { return }
        }
        let dir = (o.path as NSString).deletingLastPathComponent
        let parent = dir.isEmpty ? "." : dir
        var d = stat()
        if stat(parent, &d) != 0 {
            throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): directory \(parent): \(reason())")
        }
        if (d.st_mode & S_IFMT) != S_IFDIR { throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): \(parent) is not a directory") }
        if access(parent, W_OK | X_OK) != 0 {
            throw SlotdiffError(.io, "cannot write \(o.what) \(o.path): cannot create files in \(parent): \(reason())")
        }
    }

    /// `mkdir -p`: the directory and any missing parents.
    public static func makeDirectory(_ path: String, what: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) != S_IFDIR { throw SlotdiffError(.io, "\(what) \(path): not a directory") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent, what: what) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw SlotdiffError(.io, "\(what) \(path): cannot create the directory: \(reason())")
        }
    }

    /// Writes a whole file in place (created or truncated), as a regular file or a device.
    public static func write(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SlotdiffError(.io, "cannot write \(path): \(reason())") }
        do { try writeAll(fd, data, path) } catch {
            close(fd)
            throw error
        }
        if close(fd) != 0 { throw SlotdiffError(.io, "cannot write \(path): \(reason())") }
    }

    /// Replaces a file by writing a new one beside it and renaming it over the old, so a reader
    /// (or a crash) sees the old or the new file, never half of one. Only a regular file is ever
    /// replaced.
    public static func replace(_ data: Data, at path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            throw SlotdiffError(.io, "cannot write \(path): not a regular file (it is replaced by renaming, which is never done to a device or pipe)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "" : dir + "/") + "." + (path as NSString).lastPathComponent + ".\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SlotdiffError(.io, "cannot write \(path): cannot create \(tmp): \(reason())") }
        do {
            try writeAll(fd, data, path)
            if fsync(fd) != 0 { throw SlotdiffError(.io, "cannot write \(path): \(reason())") }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        if close(fd) != 0 {
            let e = reason()
            unlink(tmp)
            throw SlotdiffError(.io, "cannot write \(path): \(e)")
        }
        if rename(tmp, path) != 0 {
            let e = reason()
            unlink(tmp)
            throw SlotdiffError(.io, "cannot write \(path): \(e)")
        }
    }

    private static func writeAll(_ fd: Int32, _ data: Data, _ path: String) throws {
        try data.withUnsafeBytes { try SlotdiffCore.writeAll(fd, $0, path) }
    }
}
