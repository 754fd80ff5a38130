"""The tamper-evident ledger: entries sealed into an RFC 9162 Merkle tree, signed checkpoints, proofs."""
