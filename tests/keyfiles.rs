//! Key files are ones standard tools read: `keysmith keygen` writes PKCS#8 v1 (RFC 8410, what
//! `openssl genpkey -algorithm ed25519` writes), which OpenSSL, Python `cryptography` and Node's
//! `crypto` read and derive the published key from; keysmith reads a key OpenSSL wrote, and says
//! what an encrypted PKCS#8 or an OpenSSH key is and how to convert it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `keysmith keygen` into a fresh directory: the key file and its kid.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let keys = dir.join("keys");
    let out = common::keysmith().arg("keygen").arg("--keys").arg(&keys).output().unwrap();
    assert!(out.status.success(), "keygen failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let kid = stdout.split("(kid ").nth(1).and_then(|rest| rest.split(')').next()).unwrap().to_owned();
    let file = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pem"));
    (file.unwrap(), kid)
}

/// The kid (RFC 7638 thumbprint) of the Ed25519 public key `x` (raw, 32 bytes).
fn kid_of(x: &[u8]) -> String {
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
    keysmith::jwk::thumbprint(&key)
}

fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(out.status.success(), "{program} refused the key: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn openssl_python_and_node_read_a_key_keysmith_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (file, kid) = keygen(dir.path());
    let path = file.to_str().unwrap();
    let pem = std::fs::read_to_string(&file).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");

    // OpenSSL: the SubjectPublicKeyInfo ends with the 32 key bytes.
    let spki = run("openssl", &["pkey", "-in", path, "-pubout", "-outform", "DER"]);
    assert_eq!(kid_of(&spki[spki.len() - 32..]), kid, "openssl");

    // Python `cryptography`.
    let script = "import sys\nfrom cryptography.hazmat.primitives import serialization as s\n\
        k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)\n\
        sys.stdout.write(k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())\n";
    let hex = String::from_utf8(run("python3", &["-c", script, path])).unwrap();
    let x: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    assert_eq!(kid_of(&x), kid, "python cryptography");

    // Node `crypto`: the JWK `x` of the public key it derives.
    let script = "const c = require('crypto'); const fs = require('fs');\n\
        const k = c.createPrivateKey(fs.readFileSync(process.argv[1]));\n\
        process.stdout.write(c.createPublicKey(k).export({ format: 'jwk' }).x);\n";
    let x = String::from_utf8(run("node", &["-e", script, path])).unwrap();
    assert_eq!(kid_of(&common::unb64(&x)), kid, "node crypto");
}

#[test]
fn keysmith_reads_a_key_openssl_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openssl.pem");
    run("openssl", &["genpkey", "-algorithm", "ed25519", "-out", path.to_str().unwrap()]);
    let spki = run("openssl", &["pkey", "-in", path.to_str().unwrap(), "-pubout", "-outform", "DER"]);
    let pem = std::fs::read_to_string(&path).unwrap();
    let keyring = keysmith::keys::Keyring::from_pem(&pem, &path).unwrap();
    assert_eq!(keyring.signing().kid(), kid_of(&spki[spki.len() - 32..]));
}

#[test]
fn an_encrypted_or_openssh_key_is_named_with_how_to_convert_it() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pem");
    let encrypted = dir.path().join("encrypted.pem");
    run("openssl", &["genpkey", "-algorithm", "ed25519", "-out", plain.to_str().unwrap()]);
    run(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-in",
            plain.to_str().unwrap(),
            "-out",
            encrypted.to_str().unwrap(),
            "-passout",
            "pass:secret",
        ],
    );
    let pem = std::fs::read_to_string(&encrypted).unwrap();
    let message = keysmith::keys::Keyring::from_pem(&pem, &encrypted).err().unwrap().to_string();
    assert!(message.contains("encrypted PKCS#8"), "{message}");
    assert!(message.contains("openssl pkey -in"), "{message}");

    // The OpenSSH format, as `ssh-keygen -t ed25519` writes it (a fixed, throwaway key).
    let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
        -----END OPENSSH PRIVATE KEY-----\n";
    let message = keysmith::keys::Keyring::from_pem(openssh, Path::new("id_ed25519")).err().unwrap().to_string();
    assert!(message.contains("OpenSSH"), "{message}");
    assert!(message.contains("openssl genpkey -algorithm ed25519"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}
