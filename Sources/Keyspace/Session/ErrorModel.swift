import Foundation
import RDB
import RESP
import SlotdiffCore

extension SlotdiffError {
    /// Any error the engine can end with, as the one error type: exit status 2, a message, and
    /// the fields metrics and logs read (the endpoint, the file and offset).
    public static func from(_ error: any Error) -> SlotdiffError {
        switch error {
        case let e as SlotdiffError: return e
        case let e as RDBError: return SlotdiffError(.corruptInput, e.description, file: e.input, offset: e.offset)
        case let e as RedisError:
            return SlotdiffError(e.code == .authenticationFailed ? .refused : .connection, e.description, endpoint: e.endpoint)
        case is CancellationError: return SlotdiffError(.interrupted, "cancelled")
        case let e as CocoaError:
            return SlotdiffError(.io, e.localizedDescription, file: (e.userInfo[NSFilePathErrorKey] as? String) ?? e.filePath)
        default: return SlotdiffError(.io, "\(error)")
        }
    }
}
