//! The pods' network: the node's (host network, the default: no CNI plugin is ever called), or
//! a namespace per pod through real CNI (`UNDERTAKER_NETWORK=cni`): the `bridge`, `host-local`
//! and `loopback` plugins of the host's containernetworking-plugins, configured in the
//! testbed's private `conf_dir`, on a bridge of the testbed's own.
//!
//! The bridge carries no address and masquerades nothing (`isGateway` and `ipMasq` false):
//! the pods reach each other over it, the host's routes, iptables and `ip_forward` are never
//! touched (teardown checks `ip_forward` is as found). IPAM state lives in the testbed's
//! directory; teardown deletes the bridge.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, TestbedError};
use crate::layout::Layout;

/// Environment variable choosing the pods' network: `host` (default) or `cni`.
pub const NETWORK_ENV: &str = "UNDERTAKER_NETWORK";
/// Where Debian's containernetworking-plugins and the usual installs put the plugins.
const PLUGIN_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];
/// The plugins the testbed's network uses (containerd runs `loopback` itself).
const PLUGINS: &[&str] = &["bridge", "host-local", "loopback"];
/// The pods' subnet. The bridge has no address, so it routes nowhere on the host and
/// testbeds side by side may use the same one.
pub const POD_SUBNET: &str = "10.244.0.0/24";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Which network the testbed's pods get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// The node's network namespace (`hostNetwork: true`).
    #[default]
    Host,
    /// A network namespace per pod, through the CNI bridge plugin.
    Cni,
}

impl Network {
    /// From `$UNDERTAKER_NETWORK` (`host`, `cni`; unset or empty: host). Anything else panics:
    /// a typo must not quietly test the host network.
    pub fn from_env() -> Self {
        match std::env::var(NETWORK_ENV).unwrap_or_default().as_str() {
            "" | "host" => Network::Host,
            "cni" => Network::Cni,
            other => panic!("{NETWORK_ENV}={other}: expected host or cni"),
        }
    }
}

/// The CNI network of one testbed, while it exists.
#[derive(Debug)]
pub struct CniNetwork {
    /// The bridge's name (at most 15 characters, unique per testbed on the host).
    pub bridge: String,
    ip_forward: Option<String>,
}

impl CniNetwork {
    /// Links the plugins into the testbed's `bin_dir` and writes its conflist; `unique` tells
    /// this testbed from every other on the host (the bridge is named after it).
    pub fn set_up(layout: &Layout, unique: u32) -> Result<CniNetwork> {
        let plugins = plugin_dir()?;
        for plugin in PLUGINS {
            let link = layout.cni_bin.join(plugin);
            std::os::unix::fs::symlink(plugins.join(plugin), &link)
                .map_err(TestbedError::io("link CNI plugin", &link))?;
        }
        let bridge = format!("utb{unique:x}");
        let bridge = bridge[..bridge.len().min(15)].to_string();
        let name = format!("undertaker-testbed-{unique:x}");
        let conflist = conflist(&name, &bridge, &layout.dir.join("cni/ipam"));
        let path = layout.cni_conf.join("10-undertaker-testbed.conflist");
        std::fs::write(&path, conflist).map_err(TestbedError::io("write", &path))?;
        Ok(CniNetwork {
            bridge,
            ip_forward: std::fs::read_to_string(IP_FORWARD).ok(),
        })
    }

    /// The interfaces still enslaved to the bridge (a pod's veth not torn down).
    pub fn ports(&self) -> Vec<String> {
        let dir = Path::new("/sys/class/net").join(&self.bridge).join("brif");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Deletes the bridge and checks `ip_forward` is as found (restoring it if not); what
    /// could not be undone, as messages.
    pub fn tear_down(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            match Command::new("ip")
                .args(["link", "delete", &self.bridge])
                .output()
            {
                Ok(out) if out.status.success() => {}
                Ok(out) => problems.push(format!(
                    "ip link delete {}: {}",
                    self.bridge,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(error) => problems.push(format!("ip link delete {}: {error}", self.bridge)),
            }
        }
        if let Some(before) = &self.ip_forward {
            let now = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
            if now != *before {
                problems.push(format!(
                    "{IP_FORWARD} was {} and is {}: restored",
                    before.trim(),
                    now.trim()
                ));
                if let Err(error) = std::fs::write(IP_FORWARD, before) {
                    problems.push(format!("restoring {IP_FORWARD}: {error}"));
                }
            }
        }
        problems
    }
}

/// The first plugin directory with every plugin the network needs.
fn plugin_dir() -> Result<PathBuf> {
    PLUGIN_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|dir| PLUGINS.iter().all(|plugin| dir.join(plugin).is_file()))
        .ok_or_else(|| TestbedError::MissingTools {
            missing: PLUGINS.iter().map(|p| format!("CNI plugin {p}")).collect(),
            packages: vec!["containernetworking-plugins".to_string()],
            reason: format!(
                "{NETWORK_ENV}=cni needs the bridge, host-local and loopback plugins in one of {PLUGIN_DIRS:?}"
            ),
        })
}

/// The conflist: one bridge network, addresses from `host-local` with its state in `ipam`.
fn conflist(name: &str, bridge: &str, ipam: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": name,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": false,
            "ipMasq": false,
            "hairpinMode": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": POD_SUBNET }]],
                "dataDir": ipam,
            },
        }],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_is_a_bridge_without_gateway_or_masquerade_with_private_ipam_state() {
        let text = conflist("n", "utb1", Path::new("/tmp/tb/cni/ipam"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bridge = &value["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "utb1");
        assert_eq!(bridge["isGateway"], false);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["dataDir"], "/tmp/tb/cni/ipam");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_SUBNET);
    }
}
