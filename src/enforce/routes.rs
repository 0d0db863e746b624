//! Which permission a request needs, and on which directory: an ordered list of routes
//! matched with `matchit` (axum's router syntax), first match wins.

use serde::Deserialize;

/// One route as written in `gate.toml`'s `[[routes]]` (or built in code). `keysmith gate`
/// reads it strictly (unknown keys are refused with their paths).
#[derive(Debug, Clone, Deserialize)]
pub struct RouteSpec {
    /// The methods the route applies to (`["PUT", "POST"]`); case-sensitive, as HTTP methods are.
    pub methods: Vec<String>,
    /// The path pattern, in matchit syntax: `{name}` one segment, `{*name}` the rest.
    pub path: String,
    /// The permission a request on this route needs.
    pub permission: String,
    /// Where the directory checked against the key's scope comes from: `parent:<capture>`
    /// (the directory holding the captured file path), `capture:<name>` (the captured path
    /// itself) or `query:<param>`. Unset: the permission must act on no directory.
    #[serde(default)]
    pub dir: Option<String>,
    /// Whether a request counts against the key's upload limits.
    #[serde(default)]
    pub upload: bool,
}

/// Where a route's directory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirFrom {
    /// The directory holding the path captured under this name.
    Parent(String),
    /// The path captured under this name.
    Capture(String),
    /// The (decoded) value of this query parameter.
    Query(String),
}

/// Why a route list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The path pattern is not valid matchit syntax.
    #[error("routes[{index}].path: {message}")]
    Path {
        /// The route's position.
        index: usize,
        /// matchit's reason.
        message: String,
    },
    /// `dir` is not `parent:<capture>`, `capture:<name>` or `query:<param>`, or names a
    /// capture the path does not have.
    #[error("routes[{index}].dir: {message}")]
    Dir {
        /// The route's position.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// `methods` is empty or holds something that is not an HTTP method.
    #[error("routes[{index}].methods: {message}")]
    Methods {
        /// The route's position.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The route list is empty (everything would be refused).
    #[error("routes: at least one route is needed")]
    Empty,
}

struct Route {
    methods: Vec<http::Method>,
    router: matchit::Router<()>,
    permission: String,
    dir: Option<DirFrom>,
    upload: bool,
}

/// An ordered route list; the first route whose method and path match decides.
pub struct Routes(Vec<Route>);

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("len", &self.0.len()).finish()
    }
}

/// What the matched route asks of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The permission needed.
    pub permission: String,
    /// The directory to check (still to be normalised by the scope check), if the route names one.
    pub dir: Option<String>,
    /// Whether the request counts against the upload limits.
    pub upload: bool,
}

impl Routes {
    /// Builds the list, checking every route.
    ///
    /// # Errors
    ///
    /// A [`RouteError`] for the first invalid route.
    pub fn new(specs: &[RouteSpec]) -> Result<Self, RouteError> {
        if specs.is_empty() {
            return Err(RouteError::Empty);
        }
        let mut routes = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let methods_error = |message: String| RouteError::Methods { index, message };
            if spec.methods.is_empty() {
                return Err(methods_error("must name at least one method".into()));
            }
            let methods = spec
                .methods
                .iter()
                .map(|m| {
                    http::Method::from_bytes(m.as_bytes()).map_err(|_| methods_error(format!("{m:?} is not a method")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut router = matchit::Router::new();
            router.insert(spec.path.as_str(), ()).map_err(|e| RouteError::Path { index, message: e.to_string() })?;
            let dir = spec.dir.as_deref().map(|d| parse_dir(d, &spec.path)).transpose();
            let dir = dir.map_err(|message| RouteError::Dir { index, message })?;
            routes.push(Route { methods, router, permission: spec.permission.clone(), dir, upload: spec.upload });
        }
        Ok(Self(routes))
    }

    /// The first route matching `method` and the decoded `path`, with its directory taken from
    /// the path or from `query` (the raw query string, without `?`).
    ///
    /// # Errors
    ///
    /// `Err(())` when a `query:` directory is not valid percent-encoded UTF-8; `Ok(None)` when
    /// no route matches.
    #[allow(clippy::result_unit_err)] // the caller maps it to its own `invalid_path` refusal
    pub fn find(&self, method: &http::Method, path: &str, query: Option<&str>) -> Result<Option<Matched>, ()> {
        for route in &self.0 {
            if !route.methods.contains(method) {
                continue;
            }
            let Ok(found) = route.router.at(path) else { continue };
            let dir = match &route.dir {
                None => None,
                Some(DirFrom::Capture(name)) => found.params.get(name).map(|v| format!("/{v}")),
                Some(DirFrom::Parent(name)) => found.params.get(name).map(|v| match v.rsplit_once('/') {
                    Some((parent, _)) => format!("/{parent}"),
                    None => "/".to_owned(),
                }),
                Some(DirFrom::Query(param)) => query_param(query.unwrap_or(""), param)?,
            };
            return Ok(Some(Matched { permission: route.permission.clone(), dir, upload: route.upload }));
        }
        Ok(None)
    }
}

/// Parses a `dir` setting against the route's `path`.
fn parse_dir(dir: &str, path: &str) -> Result<DirFrom, String> {
    let (kind, name) = dir.split_once(':').ok_or("must be parent:<capture>, capture:<name> or query:<param>")?;
    if name.is_empty() {
        return Err("names nothing after the colon".into());
    }
    let has_capture = path.contains(&format!("{{{name}}}")) || path.contains(&format!("{{*{name}}}"));
    match kind {
        "parent" | "capture" if !has_capture => Err(format!("the path has no capture {{{name}}} or {{*{name}}}")),
        "parent" => Ok(DirFrom::Parent(name.to_owned())),
        "capture" => Ok(DirFrom::Capture(name.to_owned())),
        "query" => Ok(DirFrom::Query(name.to_owned())),
        _ => Err("must be parent:<capture>, capture:<name> or query:<param>".into()),
    }
}

/// The value of the single query parameter `name`, percent-decoded once. A repeated parameter
/// is refused (`Err`): two values would leave the choice to whoever reads it next.
fn query_param(query: &str, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(decode(value)?);
        }
    }
    Ok(found)
}

/// Percent-decodes `text` once into UTF-8.
///
/// # Errors
///
/// `Err(())` when the result is not UTF-8.
pub(crate) fn decode(text: &str) -> Result<String, ()> {
    percent_encoding::percent_decode_str(text).decode_utf8().map(|s| s.into_owned()).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn spec(methods: &[&str], path: &str, permission: &str, dir: Option<&str>) -> RouteSpec {
        RouteSpec {
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            path: path.into(),
            permission: permission.into(),
            dir: dir.map(str::to_owned),
            upload: false,
        }
    }

    #[test]
    fn first_match_wins_and_dirs_come_from_captures_or_the_query() {
        let routes = Routes::new(&[
            spec(&["PUT", "POST"], "/files/{*file}", "FILE_UPLOAD", Some("parent:file")),
            spec(&["GET"], "/list/{*dir}", "OBJECTS_LIST", Some("capture:dir")),
            spec(&["GET"], "/search", "OBJECTS_LIST", Some("query:dir")),
            spec(&["GET"], "/{*any}", "ACCESS_READ", None),
        ])
        .unwrap();
        let put = routes.find(&Method::PUT, "/files/uploads/a.txt", None).unwrap().unwrap();
        assert_eq!((put.permission.as_str(), put.dir.as_deref()), ("FILE_UPLOAD", Some("/uploads")));
        let top = routes.find(&Method::POST, "/files/a.txt", None).unwrap().unwrap();
        assert_eq!(top.dir.as_deref(), Some("/"));
        let list = routes.find(&Method::GET, "/list/uploads/x", None).unwrap().unwrap();
        assert_eq!(list.dir.as_deref(), Some("/uploads/x"));
        let search = routes.find(&Method::GET, "/search", Some("q=1&dir=%2Fuploads")).unwrap().unwrap();
        assert_eq!(search.dir.as_deref(), Some("/uploads"));
        assert_eq!(routes.find(&Method::GET, "/search", Some("dir=/a&dir=/b")), Err(()));
        // GET on /files falls through to the catch-all; DELETE matches nothing.
        let get = routes.find(&Method::GET, "/files/uploads/a.txt", None).unwrap().unwrap();
        assert_eq!(get.permission, "ACCESS_READ");
        assert_eq!(routes.find(&Method::DELETE, "/files/a", None), Ok(None));
    }

    #[test]
    fn bad_routes_are_refused() {
        assert_eq!(Routes::new(&[]).unwrap_err(), RouteError::Empty);
        assert!(matches!(
            Routes::new(&[spec(&["PUT"], "/f/{*file}", "P", Some("parent:x"))]),
            Err(RouteError::Dir { .. })
        ));
        assert!(matches!(
            Routes::new(&[spec(&["PUT"], "/f/{*file}", "P", Some("sideways:file"))]),
            Err(RouteError::Dir { .. })
        ));
        assert!(matches!(Routes::new(&[spec(&[], "/f", "P", None)]), Err(RouteError::Methods { .. })));
        assert!(matches!(Routes::new(&[spec(&["P UT"], "/f", "P", None)]), Err(RouteError::Methods { .. })));
        assert!(matches!(Routes::new(&[spec(&["GET"], "/f/{*a}/b", "P", None)]), Err(RouteError::Path { .. })));
    }
}
