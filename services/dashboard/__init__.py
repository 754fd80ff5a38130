"""The operator and finance dashboard: server-rendered pages for people, next to the partner API."""
