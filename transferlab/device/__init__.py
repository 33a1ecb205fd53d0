"""Device handling: host resources, torch devices, torchrun groups, input feeding, guards."""
