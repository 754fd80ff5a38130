"""Partner API: the signed HTTP front door of the network (grown by the partner API issue)."""
