"""Earn rules: data, versioned and effective-dated, evaluated the same way for quotes and earns."""
