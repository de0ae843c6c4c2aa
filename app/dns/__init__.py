"""DNS: look-ups, the health checks of hosted domains and of this server, and routes onward."""
