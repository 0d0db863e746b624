//! Parsing a Prometheus/OpenMetrics exposition with a real parser (Python
//! `prometheus_client`), for the tests of `/metrics` on the service and on the gate.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// Every sample of an exposition as `name{labels}` -> value, parsed by Python
/// `prometheus_client`'s OpenMetrics parser and its Prometheus text parser (which must agree).
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    const SCRIPT: &str = r##"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
text = sys.stdin.read()
def flatten(families):
    out = {}
    for family in families:
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out
prometheus = flatten(text_string_to_metric_families(text.replace("# EOF\n", "")))
om = flatten(openmetrics(text))
for key, value in om.items():
    if not key.split("{")[0].endswith("_created"):
        assert prometheus.get(key) == value, (key, value, prometheus.get(key))
print(json.dumps(om))
"##;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test-deps.sh installs what these tests need)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the exposition does not parse:\n{}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
