//! The node CLI: install, uninstall, scan, events, agent.
