//! The rules for one `[[templates]]` or `[[api_keys]]` entry against its previous version,
//! and how values are shown in a change.

use super::*;

pub(super) fn api_key_active(d: &mut Diff, subject: &str, o: &ApiKeyMeta, k: &ApiKeyMeta) {
    match (o.active, k.active) {
        (true, false) => d.push(subject, ChangeKind::ApiKeyDeactivated, k.description.clone(), false),
        (false, true) => d.push(subject, ChangeKind::ApiKeyActivated, k.description.clone(), true),
        (true, true) | (false, false) => {}
    }
}

/// The record bounds what the key (and keys it created) may do.
pub(super) fn api_key_permissions(d: &mut Diff, subject: &str, o: &ApiKeyMeta, k: &ApiKeyMeta) {
    d.lists(
        subject,
        [ChangeKind::ApiKeyPermissionsGained, ChangeKind::ApiKeyPermissionsLost],
        &o.permissions,
        &k.permissions,
    );
}

pub(super) fn api_key_projects(d: &mut Diff, subject: &str, o: &ApiKeyMeta, k: &ApiKeyMeta) {
    d.lists(subject, [ChangeKind::ApiKeyProjectsAdded, ChangeKind::ApiKeyProjectsRemoved], &o.projects, &k.projects);
}

/// A later expiry, or none, lets the key be used for longer.
pub(super) fn api_key_expiry(d: &mut Diff, subject: &str, o: &ApiKeyMeta, k: &ApiKeyMeta) {
    let widening = match (o.expires_at.as_deref(), k.expires_at.as_deref()) {
        (a, b) if a == b => return,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        // Unreadable dates were refused by validation; if one slips through, flag it.
        (a, b) => a.and_then(instant).zip(b.and_then(instant)).is_none_or(|(a, b)| b > a),
    };
    let show = |e: &Option<String>| e.clone().unwrap_or_else(|| "never".into());
    d.push(
        subject,
        ChangeKind::ApiKeyExpiryChanged,
        format!("{} -> {} (the key itself carries its exp)", show(&o.expires_at), show(&k.expires_at)),
        widening,
    );
}

/// A `revoke_issued_before` change: a new or later cut-off voids more keys (narrowing), a
/// removed or earlier one lets keys minted before it verify again (widening).
pub(super) fn cut_off(d: &mut Diff, subject: &str, kinds: [ChangeKind; 2], old: Option<u64>, new: Option<u64>) {
    let widening = match (old, new) {
        (a, b) if a == b => return,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (a, b) => b < a,
    };
    let show = |at: Option<u64>| {
        at.and_then(|s| chrono::DateTime::from_timestamp(i64::try_from(s).ok()?, 0))
            .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let kind = if widening { kinds[0] } else { kinds[1] };
    d.push(subject, kind, format!("revoke_issued_before {} -> {}", show(old), show(new)), widening);
}

/// `upload.max_file_size`: unset is unlimited, so adding or lowering it narrows.
pub(super) fn max_file_size(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| format!("{n} bytes"));
    let widening = match (o.max_file_size, t.max_file_size) {
        (a, b) if a == b => return,
        (_, None) => true,
        (None, Some(_)) => false,
        (a, b) => b > a,
    };
    let kind = if widening { ChangeKind::UploadMaxFileSizeWidened } else { ChangeKind::UploadMaxFileSizeNarrowed };
    d.push(subject, kind, format!("{} -> {}", show(o.max_file_size), show(t.max_file_size)), widening);
}

/// `upload.content_types`: unset allows any type.
pub(super) fn content_types(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    use crate::policy::media::MediaRange;
    let covers = |outer: Option<&Vec<MediaRange>>, inner: Option<&Vec<MediaRange>>| match (outer, inner) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(outer), Some(inner)) => inner.iter().all(|i| outer.iter().any(|o| o.covers(i))),
    };
    let (old, new) = (o.content_types.as_ref(), t.content_types.as_ref());
    let show = |v: Option<&Vec<MediaRange>>| {
        v.map_or_else(|| "any".to_owned(), |l| l.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
    };
    d.set(
        subject,
        &[
            ChangeKind::UploadContentTypesWidened,
            ChangeKind::UploadContentTypesNarrowed,
            ChangeKind::UploadContentTypesChanged,
        ],
        direction(covers(old, new), covers(new, old)),
        show(old),
        show(new),
    );
}

/// A config date (`2026-01-31`, midnight UTC) or date-time with offset.
pub(super) fn instant(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(day.and_time(chrono::NaiveTime::MIN).and_utc().fixed_offset())
    })
}

pub(super) fn template_active(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    match (o.active, t.active) {
        (true, false) => d.push(
            subject,
            ChangeKind::TemplateDeactivated,
            "keys can no longer be minted; minted keys are revoked".into(),
            false,
        ),
        (false, true) => d.push(subject, ChangeKind::TemplateActivated, "keys can be minted again".into(), true),
        (true, true) | (false, false) => {}
    }
}

pub(super) fn template_project(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    if o.project != t.project {
        d.push(subject, ChangeKind::TemplateProjectChanged, format!("{} -> {}", o.project, t.project), true);
    }
}

pub(super) fn template_access(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    if o.access != t.access {
        let widening = t.access == Access::Public;
        d.push(subject, ChangeKind::AccessChanged, format!("{} -> {}", access(o.access), access(t.access)), widening);
    }
}

pub(super) fn template_permissions(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    d.lists(subject, [ChangeKind::PermissionsGained, ChangeKind::PermissionsLost], &o.permissions, &t.permissions);
}

pub(super) fn scopes(a: &ScopeSet, b: &ScopeSet) -> Direction {
    direction(a.covers(b), b.covers(a))
}

pub(super) fn upload_scope(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    d.set(
        subject,
        &[ChangeKind::UploadScopeWidened, ChangeKind::UploadScopeNarrowed, ChangeKind::UploadScopeChanged],
        scopes(&o.upload_dirs, &t.upload_dirs),
        fmt_scopes(&o.upload_dirs),
        fmt_scopes(&t.upload_dirs),
    );
}

pub(super) fn listing_scope(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    d.set(
        subject,
        &[ChangeKind::ListingScopeWidened, ChangeKind::ListingScopeNarrowed, ChangeKind::ListingScopeChanged],
        scopes(&o.list_dirs, &t.list_dirs),
        fmt_scopes(&o.list_dirs),
        fmt_scopes(&t.list_dirs),
    );
}

pub(super) fn ip_ranges(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    d.set(
        subject,
        &[ChangeKind::IpRangesWidened, ChangeKind::IpRangesNarrowed, ChangeKind::IpRangesChanged],
        direction(o.ips.covers(&t.ips), t.ips.covers(&o.ips)),
        fmt_ips(&o.ips),
        fmt_ips(&t.ips),
    );
}

pub(super) fn countries(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    let countries = match (&o.countries, &t.countries) {
        (None, None) => Direction::Same,
        (None, Some(_)) => Direction::Narrowed,
        (Some(_), None) => Direction::Widened,
        (Some(a), Some(b)) => direction(b.iter().all(|c| a.contains(c)), a.iter().all(|c| b.contains(c))),
    };
    d.set(
        subject,
        &[ChangeKind::CountriesWidened, ChangeKind::CountriesNarrowed, ChangeKind::CountriesChanged],
        countries,
        fmt_countries(o.countries.as_deref()),
        fmt_countries(t.countries.as_deref()),
    );
}

pub(super) fn expiration(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    if o.expiration_duration != t.expiration_duration {
        let longer = t.expiration_duration > o.expiration_duration;
        let kind = if longer { ChangeKind::ExpirationLonger } else { ChangeKind::ExpirationShorter };
        d.push(subject, kind, format!("{} s -> {} s", o.expiration_duration, t.expiration_duration), longer);
    }
}

pub(super) fn limits(d: &mut Diff, subject: &str, o: &Template, t: &Template) {
    for (name, before, after) in [
        ("limit_per_min", o.limits.per_min, t.limits.per_min),
        ("limit_per_source_ip", o.limits.per_source_ip, t.limits.per_source_ip),
    ] {
        let raised = match (before, after) {
            (a, b) if a == b => continue,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => b > a,
            (None, None) => continue,
        };
        let kind = if raised { ChangeKind::LimitRaised } else { ChangeKind::LimitLowered };
        d.push(subject, kind, format!("{name}: {} -> {}", fmt_limit(before), fmt_limit(after)), raised);
    }
}

pub(super) fn kind(k: Option<crate::policy::scope_rules::ScopeKind>) -> &'static str {
    match k {
        Some(crate::policy::scope_rules::ScopeKind::Upload) => "upload scope",
        Some(crate::policy::scope_rules::ScopeKind::List) => "listing scope",
        Some(crate::policy::scope_rules::ScopeKind::None) => "no directory",
        None => "unknown",
    }
}

pub(super) fn access(a: Access) -> &'static str {
    match a {
        Access::ApiKey => "api_key",
        Access::Public => "public",
    }
}

pub(super) fn fmt_scopes(s: &ScopeSet) -> String {
    format!("[{}]", s.to_strings().join(", "))
}

pub(super) fn fmt_ips(r: &IpRules) -> String {
    if r.is_anywhere() { "anywhere".into() } else { format!("[{}]", r.to_strings().join(", ")) }
}

pub(super) fn fmt_countries(c: Option<&[String]>) -> String {
    c.map_or_else(|| "all countries".into(), |c| format!("[{}]", c.join(", ")))
}

pub(super) fn fmt_limit(l: Option<u32>) -> String {
    l.map_or_else(|| "unlimited".into(), |n| n.to_string())
}
