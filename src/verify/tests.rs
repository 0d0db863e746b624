//! Unit tests of the verifier: header, signature, claims and authorisation checks.

use super::*;
use crate::policy::dir_scope::ScopeError;
use crate::token::b64;
use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::net::IpAddr;

const NOW: u64 = 1_800_000_000;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}

fn kid() -> String {
    crate::token::jwk::thumbprint(&key().verifying_key())
}

fn verifier() -> Verifier {
    Verifier::new(KeySet::from_keys([key().verifying_key()]), "https://iss", "demo")
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid()})
}

fn claims() -> Value {
    json!({
        "iss": "https://iss", "aud": "demo", "sub": "t", "client_id": "t",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 1190, "jti": "abc",
        "scope": "FILE_UPLOAD OBJECTS_LIST ACCESS_READ", "ver": 3,
        "upload_dirs": ["/uploads/*"], "list_dirs": ["/*"],
        "ips": ["10.0.0.0/8"],
    })
}

fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(payload));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64::encode(sig.to_bytes()))
}

fn sign(header: &Value, claims: &Value) -> String {
    sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes(), &key())
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    v.as_object_mut().unwrap().remove(k);
    v
}

fn err(token: &str) -> VerifyError {
    verifier().verify(token, now()).unwrap_err()
}

#[test]
fn accepts_a_good_token() {
    let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
    assert_eq!(grant.jti(), "abc");
    assert_eq!(grant.template(), "t");
    assert_eq!(grant.permissions(), ["FILE_UPLOAD", "OBJECTS_LIST", "ACCESS_READ"]);
    assert_eq!(grant.claims().ver, 3);
    // typ compares case-insensitively, with or without "application/".
    for typ in ["AT+JWT", "application/at+jwt"] {
        assert!(verifier().verify(&sign(&with(header(), "typ", json!(typ)), &claims()), now()).is_ok(), "{typ}");
    }
    // An array audience containing ours is accepted (RFC 7519).
    assert!(verifier().verify(&sign(&header(), &with(claims(), "aud", json!(["x", "demo"]))), now()).is_ok());
}

#[test]
fn header_is_checked_before_the_signature() {
    let payload = claims().to_string();
    for alg in ["none", "None", "NONE", "HS256", "ES256", "RS256", "eddsa", "ed25519", "Ed448", ""] {
        let h = with(header(), "alg", json!(alg));
        // Not even signed properly: the algorithm alone refuses it.
        let token = format!("{}.{}.", b64::encode(h.to_string()), b64::encode(&payload));
        assert_eq!(err(&token), VerifyError::AlgorithmNotAllowed, "{alg}");
    }
    assert_eq!(
        err(&sign(&with(header(), "alg", json!(null)), &claims())),
        VerifyError::Malformed("header is not a valid JOSE header")
    );
    for crit in [json!([]), json!(null), json!(""), json!({})] {
        let token = sign(&with(header(), "crit", crit.clone()), &claims());
        assert_eq!(err(&token), VerifyError::CriticalHeader, "crit {crit}");
    }
    for (name, value) in [("b64", json!(null)), ("b64", json!(true)), ("zip", json!(null))] {
        let token = sign(&with(header(), name, value), &claims());
        assert!(matches!(err(&token), VerifyError::UnsupportedHeader(_)), "{name}");
    }
    assert_eq!(err(&sign(&with(header(), "crit", json!(["exp"])), &claims())), VerifyError::CriticalHeader);
    assert_eq!(err(&sign(&with(header(), "b64", json!(false)), &claims())), VerifyError::UnsupportedHeader("b64"));
    assert_eq!(err(&sign(&with(header(), "zip", json!("DEF")), &claims())), VerifyError::UnsupportedHeader("zip"));
    assert_eq!(err(&sign(&without(header(), "typ"), &claims())), VerifyError::WrongType { expected: "at+jwt" });
    for typ in ["JWT", "apikey+jwt", "revocations+jwt", "at+jwt ", ""] {
        assert_eq!(
            err(&sign(&with(header(), "typ", json!(typ)), &claims())),
            VerifyError::WrongType { expected: "at+jwt" },
            "{typ}"
        );
    }
    assert_eq!(err(&sign(&without(header(), "kid"), &claims())), VerifyError::MissingKid);
    assert_eq!(err(&sign(&with(header(), "kid", json!("../../etc/passwd")), &claims())), VerifyError::UnknownKid);
    assert!(matches!(err(&sign(&with(header(), "kid", json!(7)), &claims())), VerifyError::Malformed(_)));
    // Duplicate header names are refused, whichever value comes last.
    let dup = format!(r#"{{"alg":"EdDSA","alg":"none","typ":"at+jwt","kid":"{}"}}"#, kid());
    assert!(matches!(err(&sign_raw(dup.as_bytes(), payload.as_bytes(), &key())), VerifyError::Malformed(_)));
}

#[test]
fn embedded_keys_and_urls_are_never_trusted() {
    let attacker = SigningKey::from_bytes(&[66u8; 32]);
    let jwk = crate::token::jwk::PublicJwk::from_key(&attacker.verifying_key());
    let h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid(), "jwk": jwk, "jku": "http://evil/jwks", "x5u": "http://evil/x5u"});
    let token = sign_raw(h.to_string().as_bytes(), claims().to_string().as_bytes(), &attacker);
    assert_eq!(err(&token), VerifyError::BadSignature);
    // The same header signed by the real key is fine: the members are ignored, not followed.
    assert!(verifier().verify(&sign(&h, &claims()), now()).is_ok());
}

#[test]
fn signatures_are_strict() {
    let token = sign(&header(), &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(err(&format!("{input}.")), VerifyError::BadSignature);
    assert_eq!(err(&format!("{input}.{}", b64::encode([0u8; 64]))), VerifyError::BadSignature);
    assert_eq!(err(&format!("{input}.{}", &sig[..sig.len() - 2])), VerifyError::BadSignature);
    assert_eq!(err(&format!("{input}.{sig}AA")), VerifyError::BadSignature);
    // S + L: the malleated twin of a valid signature.
    let mut raw = b64::decode_array::<64>(sig).unwrap();
    add_group_order(&mut raw[32..]);
    assert_eq!(err(&format!("{input}.{}", b64::encode(raw))), VerifyError::BadSignature);
    // Another key under the real kid.
    let other = SigningKey::from_bytes(&[2u8; 32]);
    assert_eq!(
        err(&sign_raw(header().to_string().as_bytes(), claims().to_string().as_bytes(), &other)),
        VerifyError::BadSignature
    );
}

/// Adds the Ed25519 group order L to a little-endian scalar.
fn add_group_order(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
}

#[test]
fn shape_is_checked() {
    let token = sign(&header(), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        String::new(),
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}."),
        format!("{token}.{}", parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{} .{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
    ] {
        assert!(verifier().verify(&bad, now()).is_err(), "{bad}");
    }
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(DEFAULT_MAX_TOKEN_LEN), parts[2]);
    assert_eq!(err(&huge), VerifyError::TooLarge(DEFAULT_MAX_TOKEN_LEN));
    // A header or payload that is JSON but not an object.
    assert!(matches!(err(&sign_raw(b"[\"EdDSA\"]", b"{}", &key())), VerifyError::Malformed(_)));
    assert!(matches!(err(&sign_raw(header().to_string().as_bytes(), b"[1,2]", &key())), VerifyError::Malformed(_)));
    assert!(matches!(err(&sign_raw(header().to_string().as_bytes(), b"not json", &key())), VerifyError::Malformed(_)));
}

#[test]
fn claims_are_typed_and_required() {
    for (name, value) in [
        ("exp", json!("1900000000")),
        ("exp", json!(null)),
        ("exp", json!(1.8e9)),
        ("exp", json!(1e30)),
        ("exp", json!(-1)),
        ("aud", json!(7)),
        ("aud", json!(null)),
        ("iss", json!(["https://iss"])),
        ("iss", json!(null)),
        ("scope", json!(["FILE_UPLOAD"])),
        ("ips", json!("10.0.0.0/8")),
    ] {
        assert!(
            matches!(err(&sign(&header(), &with(claims(), name, value.clone()))), VerifyError::InvalidClaims(_)),
            "{name}={value}"
        );
    }
    for name in [
        "iss",
        "aud",
        "sub",
        "client_id",
        "iat",
        "nbf",
        "exp",
        "jti",
        "scope",
        "ver",
        "upload_dirs",
        "list_dirs",
        "ips",
    ] {
        assert!(
            matches!(err(&sign(&header(), &without(claims(), name))), VerifyError::InvalidClaims(_)),
            "missing {name}"
        );
    }
    let dup = claims().to_string().replacen('{', r#"{"exp":99999999999,"#, 1);
    assert!(matches!(
        err(&sign_raw(header().to_string().as_bytes(), dup.as_bytes(), &key())),
        VerifyError::InvalidClaims(_)
    ));
}

#[test]
fn registered_claims_are_checked() {
    assert_eq!(err(&sign(&header(), &with(claims(), "iss", json!("https://other")))), VerifyError::WrongIssuer);
    assert_eq!(err(&sign(&header(), &with(claims(), "aud", json!("other")))), VerifyError::WrongAudience);
    assert_eq!(err(&sign(&header(), &with(claims(), "aud", json!([])))), VerifyError::WrongAudience);
    assert_eq!(err(&sign(&header(), &with(claims(), "exp", json!(NOW - 5)))), VerifyError::Expired);
    assert!(
        verifier().verify(&sign(&header(), &with(claims(), "exp", json!(NOW - 4))), now()).is_ok(),
        "within leeway"
    );
    assert_eq!(err(&sign(&header(), &with(claims(), "nbf", json!(NOW + 60)))), VerifyError::NotYetValid);
    let future = with(with(claims(), "iat", json!(NOW + 60)), "nbf", json!(NOW));
    assert_eq!(err(&sign(&header(), &future)), VerifyError::IssuedInFuture);
    let long = with(claims(), "exp", json!(NOW - 10 + DEFAULT_MAX_LIFETIME.as_secs() + 1));
    assert_eq!(err(&sign(&header(), &long)), VerifyError::LifetimeTooLong);
    assert!(matches!(err(&sign(&header(), &with(claims(), "exp", json!(NOW - 10)))), VerifyError::InvalidClaims(_)));
    assert!(matches!(err(&sign(&header(), &with(claims(), "jti", json!("")))), VerifyError::InvalidClaims(_)));
    assert!(matches!(
        err(&sign(&header(), &with(claims(), "upload_dirs", json!(["/a/../b"])))),
        VerifyError::InvalidScope(_)
    ));
    assert!(matches!(err(&sign(&header(), &with(claims(), "upload_dirs", json!([])))), VerifyError::InvalidScope(_)));
    assert!(matches!(
        err(&sign(&header(), &with(claims(), "ips", json!(["10.0.0.1/8"])))),
        VerifyError::InvalidIpRange(_)
    ));
    assert!(matches!(err(&sign(&header(), &with(claims(), "ips", json!([])))), VerifyError::InvalidClaims(_)));
    let strict = verifier().leeway(Duration::ZERO).verify(&sign(&header(), &with(claims(), "exp", json!(NOW))), now());
    assert_eq!(strict.unwrap_err(), VerifyError::Expired);
}

#[test]
fn authorize_decides_with_reasons() {
    let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/a"), Some(ip)), Ok(()));
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads"), Some("::ffff:10.1.2.3".parse().unwrap())), Ok(()));
    assert_eq!(
        grant.authorize("FILE_DELETE", Some("/uploads/a"), Some(ip)),
        Err(Denied::PermissionMissing("FILE_DELETE".into()))
    );
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads2"), Some(ip)), Err(Denied::OutsideScope("upload")));
    assert_eq!(
        grant.authorize("FILE_UPLOAD", Some("/uploads/../etc"), Some(ip)),
        Err(Denied::InvalidPath(ScopeError::DotSegment))
    );
    assert_eq!(
        grant.authorize("FILE_UPLOAD", Some("/uploads%2f..%2fetc"), Some(ip)),
        Err(Denied::InvalidPath(ScopeError::EncodedSeparator))
    );
    for lookalike in
        ["/uploads/\u{FF0E}\u{FF0E}/\u{FF0E}\u{FF0E}/etc", "/uploads/.\u{200B}./etc", "/uploads/a\u{FF0F}b"]
    {
        assert!(
            matches!(grant.authorize("FILE_UPLOAD", Some(lookalike), Some(ip)), Err(Denied::InvalidPath(_))),
            "{lookalike:?}"
        );
    }
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/写真/２０２６"), Some(ip)), Ok(()));
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/café"), Some(ip)), Ok(()));
    assert_eq!(grant.authorize("FILE_UPLOAD", None, Some(ip)), Err(Denied::DirectoryRequired("FILE_UPLOAD".into())));
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/a"), None), Err(Denied::IpRequired));
    let outside: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/a"), Some(outside)), Err(Denied::IpNotAllowed(outside)));
    // OBJECTS_LIST checks list_dirs ("/*"), ACCESS_READ checks no directory.
    assert_eq!(grant.authorize("OBJECTS_LIST", Some("/anything/at/all"), Some(ip)), Ok(()));
    assert_eq!(grant.authorize("ACCESS_READ", None, Some(ip)), Ok(()));
    assert_eq!(grant.authorize_country("FR"), Ok(()));
    assert_eq!(Denied::OutsideScope("upload").code(), "outside_scope");
}

#[test]
fn custom_permissions_fail_closed_without_their_rules() {
    let c = with(claims(), "scope", json!("asset.upload asset.read"));
    let ip = Some("10.1.2.3".parse().unwrap());
    let grant = verifier().verify(&sign(&header(), &c), now()).unwrap();
    assert_eq!(
        grant.authorize("asset.upload", Some("/etc/secret"), ip),
        Err(Denied::NoScopeRule("asset.upload".into()))
    );
    let rules = ScopeRules::new(["asset.upload", "asset.read"], ["asset.upload"], ["asset.read"]);
    let grant = verifier().scope_rules(rules).verify(&sign(&header(), &c), now()).unwrap();
    assert_eq!(grant.authorize("asset.upload", Some("/etc/secret"), ip), Err(Denied::OutsideScope("upload")));
    assert_eq!(grant.authorize("asset.upload", Some("/uploads/x"), ip), Ok(()));
}

#[test]
fn countries_and_anywhere() {
    let c = with(with(claims(), "countries", json!(["FR"])), "ips", json!(["0.0.0.0/0", "::/0"]));
    let grant = verifier().verify(&sign(&header(), &c), now()).unwrap();
    assert_eq!(grant.authorize_country("FR"), Ok(()));
    assert_eq!(grant.authorize_country("DE"), Err(Denied::CountryNotAllowed("DE".into())));
    assert_eq!(grant.authorize("ACCESS_READ", None, None), Ok(()), "no address needed when unrestricted");
}

#[test]
fn nesting_is_bounded_outside_strings() {
    let deep = with(claims(), "deep", serde_json::from_str(&format!("{}{}", "[".repeat(20), "]".repeat(20))).unwrap());
    assert_eq!(err(&sign(&header(), &deep)), VerifyError::Malformed("payload is nested too deeply"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_single_byte_change_is_refused(pos in 0usize..1000, byte: u8) {
        let token = sign(&header(), &claims());
        let mut bytes = token.clone().into_bytes();
        let pos = pos % bytes.len();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        if let Ok(mutated) = String::from_utf8(bytes) {
            prop_assert!(verifier().verify(&mutated, now()).is_err());
        }
    }

    #[test]
    fn random_input_never_panics(text in ".{0,300}") {
        let _ = verifier().verify(&text, now());
    }

    #[test]
    fn random_segments_never_panic(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,90}") {
        let _ = verifier().verify(&format!("{a}.{b}.{c}"), now());
    }
}

#[test]
fn authorize_file_authorises_the_directory_the_file_is_in() {
    use crate::policy::scope_rules::permission;
    let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
    let ip = Some("10.1.2.3".parse().unwrap());
    assert_eq!(grant.authorize_file(permission::FILE_UPLOAD, "/uploads/a/photo.jpg", ip), Ok(()));
    assert_eq!(grant.authorize_file(permission::FILE_UPLOAD, "//uploads/./a/photo.jpg", ip), Ok(()));
    // The name is never authorised as a directory: `..`, `.` and empty names are refused.
    for (path, error) in [
        ("/uploads/a/..", ScopeError::DotSegment),
        ("/uploads/a/.", ScopeError::InvalidFileName),
        ("/uploads/a/", ScopeError::InvalidFileName),
        ("/", ScopeError::InvalidFileName),
        ("/uploads/a/x%2f..", ScopeError::EncodedSeparator),
    ] {
        assert_eq!(grant.authorize_file("FILE_UPLOAD", path, ip), Err(Denied::InvalidPath(error)), "{path}");
    }
    // A file directly in `/uploads` lies in `/uploads/*`; one in `/` does not.
    assert_eq!(grant.authorize_file("FILE_UPLOAD", "/uploads/photo.jpg", ip), Ok(()));
    assert_eq!(grant.authorize_file("FILE_UPLOAD", "/photo.jpg", ip), Err(Denied::OutsideScope("upload")));
    // The same decision as `authorize`: permission, then address, then directory.
    assert_eq!(
        grant.authorize_file("FILE_DELETE", "/uploads/a.jpg", ip),
        Err(Denied::PermissionMissing("FILE_DELETE".into()))
    );
    assert_eq!(
        grant.authorize_file("FILE_UPLOAD", "/uploads/a.jpg", Some("192.0.2.1".parse().unwrap())),
        Err(Denied::IpNotAllowed("192.0.2.1".parse().unwrap()))
    );
    assert_eq!(grant.authorize_file("FILE_UPLOAD", "/uploads/a.jpg", None), Err(Denied::IpRequired));
    // A malformed file path is refused even for a permission that checks no directory.
    assert_eq!(
        grant.authorize_file("ACCESS_READ", "/uploads/..", ip),
        Err(Denied::InvalidPath(ScopeError::DotSegment))
    );
}

#[test]
fn grant_expiry_is_a_time() {
    let grant = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
    assert_eq!(grant.expires_at(), UNIX_EPOCH + Duration::from_secs(NOW + 1190));
}

#[test]
fn listing_kids_does_not_copy_the_key_set() {
    let verifier = verifier();
    assert!(Arc::ptr_eq(&verifier.keys(), &verifier.keys()));
    assert_eq!(verifier.keys().kids(), [kid().as_str()]);
}

#[test]
fn list_parse_errors_are_errors() {
    fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(e)
    }
    let ips = crate::policy::ip::IpRules::parse(&["10.0.0.1/8"]).map_err(boxed).unwrap_err();
    assert!(ips.to_string().contains("entry 0"), "{ips}");
    let dirs = crate::policy::dir_scope::ScopeSet::parse(&["/a", "/b/"]).map_err(boxed).unwrap_err();
    assert!(dirs.to_string().contains("entry 1"), "{dirs}");
}

#[test]
fn a_revocation_list_is_bounded_in_entries() {
    let list = |n: usize| {
        let ids: Vec<String> = (0..n).map(|i| format!("ak_{i}")).collect();
        let claims = json!({
            "iss": "https://iss", "iat": NOW, "exp": NOW + 300, "ver": 1,
            "revoked_api_keys": [], "revoked_templates": [], "active_api_keys": ids,
        });
        sign(&json!({"alg": "EdDSA", "typ": "revocations+jwt", "kid": kid()}), &claims)
    };
    assert!(verifier().set_revocations(&list(crate::verify::revocation::MAX_REVOCATION_ENTRIES), now()).is_ok());
    assert!(matches!(
        verifier().set_revocations(&list(crate::verify::revocation::MAX_REVOCATION_ENTRIES + 1), now()),
        Err(VerifyError::InvalidClaims(_))
    ));
}

#[test]
fn uploads_are_bounded_in_size_and_type_in_one_decision() {
    let limited =
        with(with(claims(), "upload_max_bytes", json!(1000)), "upload_types", json!(["image/png", "video/*"]));
    let grant = verifier().verify(&sign(&header(), &limited), now()).unwrap();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let upload = |size: Option<u64>, ty: Option<&str>| {
        grant.authorize_upload("FILE_UPLOAD", Some("/uploads/a"), Some(ip), size, ty)
    };
    assert!(upload(Some(1000), Some("image/png")).is_ok());
    assert!(upload(Some(1), Some("Image/PNG; charset=x")).is_ok(), "case and parameters ignored");
    assert!(upload(Some(1), Some("video/mp4")).is_ok(), "a type/* range");
    assert_eq!(upload(Some(1001), Some("image/png")).unwrap_err().code(), "file_too_large");
    assert_eq!(upload(Some(1), Some("image/jpeg")).unwrap_err().code(), "content_type_not_allowed");
    assert_eq!(upload(None, Some("image/png")).unwrap_err().code(), "length_required", "a missing length is refused");
    assert_eq!(upload(Some(1), None).unwrap_err().code(), "content_type_not_allowed", "a missing type is refused");
    assert_eq!(upload(Some(1), Some("*/*")).unwrap_err().code(), "content_type_not_allowed");
    // Built on authorize: scope and address are still checked first.
    assert_eq!(
        grant
            .authorize_upload("FILE_UPLOAD", Some("/private"), Some(ip), Some(1), Some("image/png"))
            .unwrap_err()
            .code(),
        "outside_scope"
    );
    // Without limits in the token, nothing is required.
    let open = verifier().verify(&sign(&header(), &claims()), now()).unwrap();
    assert!(open.authorize_upload("FILE_UPLOAD", Some("/uploads/a"), Some(ip), None, None).is_ok());
    // Malformed limits in a token are refused at verification.
    for bad in [json!(["image/png; q=1"]), json!([]), json!(["*/*"])] {
        let token = sign(&header(), &with(claims(), "upload_types", bad.clone()));
        assert!(matches!(err(&token), VerifyError::InvalidClaims(_)), "{bad}");
    }
}

// The verified-token cache (`Verifier::cache_verified`): a hit skips only the signature check.

fn revocation_list(iat: u64, templates: &[&str], api_keys: &[&str]) -> String {
    let header = json!({"alg": "EdDSA", "kid": kid(), "typ": "revocations+jwt"});
    let claims = json!({
        "iss": "https://iss", "iat": iat, "exp": iat + 600, "ver": 3,
        "revoked_api_keys": api_keys, "revoked_templates": templates,
        // `k1`, the permanent key of these tests, is recorded and active.
        "active_api_keys": ["k1"],
    });
    sign(&header, &claims)
}

fn api_key_token() -> String {
    let header = json!({"alg": "EdDSA", "typ": "apikey+jwt", "kid": kid()});
    let claims = json!({
        "iss": "https://iss", "aud": ["demo"], "sub": "k1", "jti": "k1", "iat": NOW - 10,
        "scope": "FILE_UPLOAD", "ver": 3, "exp": NOW + 3600,
    });
    sign(&header, &claims)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn cache_never_serves_an_expired_token() {
    let v = verifier().cache_verified(16);
    let token = sign(&header(), &claims());
    assert!(v.verify(&token, now()).is_ok());
    assert_eq!(v.cached_len(), 1);
    // Within the leeway after exp, still accepted; from exp + leeway on, refused.
    assert!(v.verify(&token, at(NOW + 1190 + 4)).is_ok());
    assert_eq!(v.verify(&token, at(NOW + 1190 + 5)).unwrap_err(), VerifyError::Expired);
    // A refused hit is forgotten.
    assert_eq!(v.cached_len(), 0);
    assert_eq!(v.verify(&token, at(NOW + 5000)).unwrap_err(), VerifyError::Expired);
}

#[test]
fn cache_rechecks_nbf_and_iat_on_every_hit() {
    let v = verifier().cache_verified(16);
    let token = sign(&header(), &with(claims(), "nbf", json!(NOW + 100)));
    assert!(v.verify(&token, at(NOW + 200)).is_ok());
    // A clock that steps back (or a hit at an earlier `now`) does not make nbf pass.
    assert_eq!(v.verify(&token, now()).unwrap_err(), VerifyError::NotYetValid);
    let token = sign(&header(), &claims());
    assert!(v.verify(&token, now()).is_ok());
    assert_eq!(v.verify(&token, at(NOW - 100)).unwrap_err(), VerifyError::NotYetValid);
}

#[test]
fn cache_refuses_a_revoked_template_from_the_moment_the_list_is_held() {
    let v = verifier().cache_verified(16);
    let token = sign(&header(), &claims());
    let created = sign(&header(), &with(with(claims(), "jti", json!("def")), "api_keys", json!(["k9"])));
    assert!(v.verify(&token, now()).is_ok());
    assert!(v.verify(&created, now()).is_ok());
    assert_eq!(v.cached_len(), 2);
    v.set_revocations(&revocation_list(NOW, &["t"], &[]), now()).unwrap();
    assert_eq!(v.verify(&token, now()).unwrap_err(), VerifyError::Revoked);
    // A clone shares the cache and the list.
    assert_eq!(v.clone().verify(&created, now()).unwrap_err(), VerifyError::Revoked);
    // A key minted by a permanent key that is revoked later is refused as well.
    let v = verifier().cache_verified(16);
    let created = sign(&header(), &with(with(claims(), "sub", json!("u")), "api_keys", json!(["k9"])));
    assert!(v.verify(&created, now()).is_ok());
    v.set_revocations(&revocation_list(NOW, &[], &["k9"]), now()).unwrap();
    assert_eq!(v.verify(&created, now()).unwrap_err(), VerifyError::Revoked);
}

#[test]
fn cache_refuses_a_revoked_or_stale_permanent_key() {
    let v = verifier().cache_verified(16);
    v.set_revocations(&revocation_list(NOW - 10, &[], &[]), now()).unwrap();
    let key = api_key_token();
    assert!(v.verify_api_key(&key, now()).is_ok());
    assert_eq!(v.cached_len(), 1);
    // The held list goes stale: refused although the key is cached.
    assert_eq!(v.verify_api_key(&key, at(NOW + 700)).unwrap_err(), VerifyError::RevocationsExpired);
    assert!(v.verify_api_key(&key, now()).is_ok());
    v.set_revocations(&revocation_list(NOW, &[], &["k1"]), now()).unwrap();
    assert_eq!(v.verify_api_key(&key, now()).unwrap_err(), VerifyError::Revoked);
    // The same text is never served as the other kind of token.
    assert!(v.verify(&key, now()).is_err());
}

#[test]
fn cache_is_emptied_when_the_key_set_changes() {
    let v = verifier().cache_verified(16);
    let token = sign(&header(), &claims());
    assert!(v.verify(&token, now()).is_ok());
    v.set_keys(KeySet::from_keys([SigningKey::from_bytes(&[2u8; 32]).verifying_key()]));
    assert_eq!(v.verify(&token, now()).unwrap_err(), VerifyError::UnknownKid);
    assert_eq!(v.cached_len(), 0);
}

#[test]
fn cache_is_bounded_and_skips_refused_tokens() {
    let v = verifier().cache_verified(4);
    for i in 0..10 {
        let token = sign(&header(), &with(claims(), "jti", json!(format!("j{i}"))));
        assert!(v.verify(&token, now()).is_ok());
        assert!(v.cached_len() <= 4);
    }
    assert_eq!(v.cached_len(), 4);
    let v = verifier().cache_verified(4);
    let tampered = sign(&header(), &claims()).replace('.', ".x");
    assert!(v.verify(&tampered, now()).is_err());
    assert!(v.verify(&sign(&header(), &with(claims(), "exp", json!(NOW - 100))), now()).is_err());
    assert_eq!(v.cached_len(), 0);
    // A setting that changes what verifies starts a new, empty cache.
    let v = verifier().cache_verified(4);
    assert!(v.verify(&sign(&header(), &claims()), now()).is_ok());
    let narrower = v.clone().also_audience("other");
    assert_eq!(narrower.cached_len(), 0);
    assert_eq!(v.cached_len(), 1);
}

#[test]
fn cache_stats_count_hits_and_misses() {
    let v = verifier().cache_verified(16);
    assert_eq!(v.cache_stats(), CacheStats::default());
    let token = sign(&header(), &claims());
    assert!(v.verify(&token, now()).is_ok());
    assert!(v.verify(&token, now()).is_ok());
    assert!(v.verify(&token, now()).is_ok());
    let stats = v.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 1, 1));
    // Clones share the cache and its counts; a verifier without a cache counts nothing.
    assert!(v.clone().verify(&token, now()).is_ok());
    assert_eq!(v.cache_stats().hits, 3);
    assert!(verifier().verify(&token, now()).is_ok());
    assert_eq!(verifier().cache_stats(), CacheStats::default());
}

#[test]
fn api_key_expiry_is_a_time_and_only_narrows() {
    let v = verifier();
    v.set_revocations(&revocation_list(NOW - 10, &[], &[]), now()).unwrap();
    let mut grant = v.verify_api_key(&api_key_token(), now()).unwrap();
    assert_eq!(grant.expires_at(), Some(at(NOW + 3600)));
    grant.expire_by(at(NOW + 100));
    assert_eq!(grant.expires_at(), Some(at(NOW + 100)));
    // A later end never widens it; sub-second parts round down.
    grant.expire_by(at(NOW + 200));
    assert_eq!(grant.expires_at(), Some(at(NOW + 100)));
    grant.expire_by(at(NOW + 50) + Duration::from_millis(900));
    assert_eq!(grant.expires_at(), Some(at(NOW + 50)));
    // An `exp` beyond what `SystemTime` holds is clamped, never a panic.
    let header = json!({"alg": "EdDSA", "typ": "apikey+jwt", "kid": kid()});
    let far = json!({
        "iss": "https://iss", "aud": ["demo"], "sub": "k1", "jti": "k1", "iat": NOW - 10,
        "scope": "FILE_UPLOAD", "ver": 3, "exp": u64::MAX,
    });
    let grant = v.verify_api_key(&sign(&header, &far), now()).unwrap();
    assert_eq!(grant.expires_at(), Some(at(253_402_300_799)));
}
