//! Finds a container's cgroup, kills all of it, waits until it is empty and names what survived.
