//! A real browser (headless Chromium) on a page from another origin gets a key: the CORS
//! preflight and the request pass for a configured origin and are blocked for any other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use std::process::Command;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A listener for a page, and the origin it serves from.
async fn origin() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// Serves one HTML page (at any path) on `listener` until the test ends.
fn serve_page(listener: tokio::net::TcpListener, html: String) {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// The page mints with a JSON POST (which needs a CORS preflight) and writes the outcome into
/// the DOM. The request is synchronous so the DOM is final when Chromium dumps it.
fn minting_page(mint_url: &str) -> String {
    format!(
        r#"<!doctype html><html><body><script>
var out;
try {{
  var x = new XMLHttpRequest();
  x.open("POST", "{mint_url}", false);
  x.setRequestHeader("Content-Type", "application/json");
  x.send(JSON.stringify({{permissions: ["FILE_UPLOAD"], expiration_duration: 60}}));
  var body = JSON.parse(x.responseText);
  out = "status=" + x.status + " result=" + body.status + " key=" + (body.key ? body.key.split(".").length : 0);
}} catch (e) {{
  out = "blocked=" + e.name;
}}
document.body.setAttribute("data-outcome", out);
</script></body></html>"#
    )
}

fn chromium() -> &'static str {
    let path = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: run scripts/test-deps.sh (it installs Debian's chromium)"
    );
    path
}

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn outcome(dom: &str) -> String {
    dom.split("data-outcome=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_page_on_an_allowed_origin_gets_a_key_and_others_do_not() {
    // Two pages: the first origin is allowed by the config, the second is not.
    let (allowed_listener, allowed_origin) = origin().await;
    let (other_listener, other_origin) = origin().await;
    let config = format!(
        r#"
version = 1
issuer = "https://keys.test"
[server]
cors_origins = ["{allowed_origin}"]
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
"#
    );
    let server = TestServer::start(&config).await;
    let html = minting_page(&server.url("/demo/v1/key/widget"));
    serve_page(allowed_listener, html.clone());
    serve_page(other_listener, html);

    let allowed = tokio::task::spawn_blocking({
        let url = format!("{allowed_origin}/upload.html");
        move || outcome(&dump_dom(&url))
    })
    .await
    .unwrap();
    assert_eq!(allowed, "status=200 result=success key=3", "the allowed origin gets a key");

    let blocked =
        tokio::task::spawn_blocking(move || outcome(&dump_dom(&format!("{other_origin}/upload.html")))).await.unwrap();
    assert_eq!(blocked, "blocked=NetworkError", "another origin is blocked by CORS");
}

/// The page reads each public document, reads its `ETag`, revalidates with a weak
/// `If-None-Match` (a header that needs a CORS preflight), and tries to mint.
fn public_documents_page(base: &str) -> String {
    format!(
        r#"<!doctype html><html><body><script>
function get(path, tag) {{
  try {{
    var x = new XMLHttpRequest();
    x.open("GET", "{base}" + path, false);
    if (tag) x.setRequestHeader("If-None-Match", tag);
    x.send();
    return {{status: x.status, etag: x.getResponseHeader("ETag")}};
  }} catch (e) {{
    return {{status: "blocked", etag: null}};
  }}
}}
var out = [];
["/.well-known/jwks.json", "/v1/revocations", "/.well-known/oauth-authorization-server"].forEach(function (path) {{
  var first = get(path);
  var again = first.etag ? get(path, "W/" + first.etag).status : "no-etag";
  out.push(first.status + "," + again);
}});
out.push(get("/demo/v1/key/widget").status);
document.body.setAttribute("data-outcome", out.join(" "));
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_page_on_any_origin_reads_and_revalidates_the_public_documents() {
    let (listener, page_origin) = origin().await;
    let server = TestServer::start(
        r#"
version = 1
issuer = "https://keys.test"
[server]
cors_origins = ["https://app.example"]
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
"#,
    )
    .await;
    // The discovery metadata names the issuer URL, so serve under one that is this server.
    let issuer = server.url("");
    let config = std::fs::read_to_string(server.dir.path().join("config.toml")).unwrap();
    let config = config.replace("version = 1", "version = 2").replace("https://keys.test", &issuer);
    std::fs::write(server.dir.path().join("config.toml"), config).unwrap();
    server.reload();
    serve_page(listener, public_documents_page(&issuer));
    let seen =
        tokio::task::spawn_blocking(move || outcome(&dump_dom(&format!("{page_origin}/verifier.html")))).await.unwrap();
    // Each document: 200 with a readable ETag, then 304 for its weak form; the mint endpoint
    // keeps its configured origins, so this page cannot mint.
    assert_eq!(seen, "200,304 200,304 200,304 blocked", "public documents from an unlisted origin");
}
