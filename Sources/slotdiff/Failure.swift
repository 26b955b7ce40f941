import ArgumentParser
import Keyspace
import SlotdiffCore

extension SlotdiffError {
    /// What a command ends with: the engine's errors, and the option checks' `ValidationError`
    /// as a usage error.
    static func of(_ error: any Error) -> SlotdiffError {
        if let e = error as? ValidationError { return SlotdiffError(.usage, e.message) }
        return from(error)
    }
}
