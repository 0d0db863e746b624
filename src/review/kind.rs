//! What kind of change a [`Change`](super::Change) is: one variant per kind, each with a
//! stable name (`permissions_gained`) that `keysmith check` prints and writes in its JSON.

use serde::{Serialize, Serializer};
use std::fmt;

/// A stable kind of access change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// `access_changed`.
    AccessChanged,
    /// `allowed_hosts_changed`.
    AllowedHostsChanged,
    /// `allowed_hosts_narrowed`.
    AllowedHostsNarrowed,
    /// `allowed_hosts_widened`.
    AllowedHostsWidened,
    /// `api_key_activated`.
    ApiKeyActivated,
    /// `api_key_added`.
    ApiKeyAdded,
    /// `api_key_created_at_changed`.
    ApiKeyCreatedAtChanged,
    /// `api_key_cut_off_narrowed`: a `revoke_issued_before` was added or moved later.
    ApiKeyCutOffNarrowed,
    /// `api_key_cut_off_widened`: a `revoke_issued_before` was removed or moved earlier.
    ApiKeyCutOffWidened,
    /// `api_key_deactivated`.
    ApiKeyDeactivated,
    /// `api_key_description_changed`.
    ApiKeyDescriptionChanged,
    /// `api_key_expiry_changed`.
    ApiKeyExpiryChanged,
    /// `api_key_kid_changed`.
    ApiKeyKidChanged,
    /// `api_key_permissions_gained`.
    ApiKeyPermissionsGained,
    /// `api_key_permissions_lost`.
    ApiKeyPermissionsLost,
    /// `api_key_projects_added`.
    ApiKeyProjectsAdded,
    /// `api_key_projects_removed`.
    ApiKeyProjectsRemoved,
    /// `api_key_removed`.
    ApiKeyRemoved,
    /// `api_key_unrevoked`.
    ApiKeyUnrevoked,
    /// `audit_log_added`.
    AuditLogAdded,
    /// `audit_log_changed`.
    AuditLogChanged,
    /// `audit_log_removed`.
    AuditLogRemoved,
    /// `catalog_changed`.
    CatalogChanged,
    /// `cors_origin_added`.
    CorsOriginAdded,
    /// `cors_origin_removed`.
    CorsOriginRemoved,
    /// `countries_changed`.
    CountriesChanged,
    /// `countries_narrowed`.
    CountriesNarrowed,
    /// `countries_widened`.
    CountriesWidened,
    /// `expiration_longer`.
    ExpirationLonger,
    /// `expiration_shorter`.
    ExpirationShorter,
    /// `forwarded_header_changed`.
    ForwardedHeaderChanged,
    /// `geoip_database_changed`.
    GeoipDatabaseChanged,
    /// `ip_ranges_changed`.
    IpRangesChanged,
    /// `ip_ranges_narrowed`.
    IpRangesNarrowed,
    /// `ip_ranges_widened`.
    IpRangesWidened,
    /// `issuer_changed`.
    IssuerChanged,
    /// `jwks_alg_member_changed`.
    JwksAlgMemberChanged,
    /// `jwks_max_age_changed`.
    JwksMaxAgeChanged,
    /// `jws_alg_changed`.
    JwsAlgChanged,
    /// `limit_lowered`.
    LimitLowered,
    /// `limit_raised`.
    LimitRaised,
    /// `listen_changed`.
    ListenChanged,
    /// `listing_scope_changed`.
    ListingScopeChanged,
    /// `listing_scope_narrowed`.
    ListingScopeNarrowed,
    /// `listing_scope_widened`.
    ListingScopeWidened,
    /// `manage_permission_changed`.
    ManagePermissionChanged,
    /// `metrics_listen_changed`.
    MetricsListenChanged,
    /// `permissions_gained`.
    PermissionsGained,
    /// `permissions_lost`.
    PermissionsLost,
    /// `project_added`.
    ProjectAdded,
    /// `project_description_changed`.
    ProjectDescriptionChanged,
    /// `project_removed`.
    ProjectRemoved,
    /// `rate_limit_lowered`.
    RateLimitLowered,
    /// `rate_limit_raised`.
    RateLimitRaised,
    /// `rate_limit_store_changed`.
    RateLimitStoreChanged,
    /// `revocations_max_age_changed`.
    RevocationsMaxAgeChanged,
    /// `scope_rule_changed`.
    ScopeRuleChanged,
    /// `template_activated`.
    TemplateActivated,
    /// `template_added`.
    TemplateAdded,
    /// `template_created_at_changed`.
    TemplateCreatedAtChanged,
    /// `template_cut_off_narrowed`: a `revoke_issued_before` was added or moved later.
    TemplateCutOffNarrowed,
    /// `template_cut_off_widened`: a `revoke_issued_before` was removed or moved earlier.
    TemplateCutOffWidened,
    /// `template_deactivated`.
    TemplateDeactivated,
    /// `template_description_changed`.
    TemplateDescriptionChanged,
    /// `template_project_changed`.
    TemplateProjectChanged,
    /// `template_removed`.
    TemplateRemoved,
    /// `template_unrevoked`: a deactivated template left the config, so the signed
    /// revocation list no longer names it and its unexpired keys verify again.
    TemplateUnrevoked,
    /// `trusted_proxies_changed`.
    TrustedProxiesChanged,
    /// `trusted_proxies_narrowed`.
    TrustedProxiesNarrowed,
    /// `trusted_proxies_widened`.
    TrustedProxiesWidened,
    /// `upload_content_types_changed`.
    UploadContentTypesChanged,
    /// `upload_content_types_narrowed`.
    UploadContentTypesNarrowed,
    /// `upload_content_types_widened`.
    UploadContentTypesWidened,
    /// `upload_max_file_size_narrowed`.
    UploadMaxFileSizeNarrowed,
    /// `upload_max_file_size_widened`.
    UploadMaxFileSizeWidened,
    /// `upload_scope_changed`.
    UploadScopeChanged,
    /// `upload_scope_narrowed`.
    UploadScopeNarrowed,
    /// `upload_scope_widened`.
    UploadScopeWidened,
}

impl ChangeKind {
    /// The stable name, such as `permissions_gained`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessChanged => "access_changed",
            Self::AllowedHostsChanged => "allowed_hosts_changed",
            Self::AllowedHostsNarrowed => "allowed_hosts_narrowed",
            Self::AllowedHostsWidened => "allowed_hosts_widened",
            Self::ApiKeyActivated => "api_key_activated",
            Self::ApiKeyAdded => "api_key_added",
            Self::ApiKeyCreatedAtChanged => "api_key_created_at_changed",
            Self::ApiKeyCutOffNarrowed => "api_key_cut_off_narrowed",
            Self::ApiKeyCutOffWidened => "api_key_cut_off_widened",
            Self::ApiKeyDeactivated => "api_key_deactivated",
            Self::ApiKeyDescriptionChanged => "api_key_description_changed",
            Self::ApiKeyExpiryChanged => "api_key_expiry_changed",
            Self::ApiKeyKidChanged => "api_key_kid_changed",
            Self::ApiKeyPermissionsGained => "api_key_permissions_gained",
            Self::ApiKeyPermissionsLost => "api_key_permissions_lost",
            Self::ApiKeyProjectsAdded => "api_key_projects_added",
            Self::ApiKeyProjectsRemoved => "api_key_projects_removed",
            Self::ApiKeyRemoved => "api_key_removed",
            Self::ApiKeyUnrevoked => "api_key_unrevoked",
            Self::AuditLogAdded => "audit_log_added",
            Self::AuditLogChanged => "audit_log_changed",
            Self::AuditLogRemoved => "audit_log_removed",
            Self::CatalogChanged => "catalog_changed",
            Self::CorsOriginAdded => "cors_origin_added",
            Self::CorsOriginRemoved => "cors_origin_removed",
            Self::CountriesChanged => "countries_changed",
            Self::CountriesNarrowed => "countries_narrowed",
            Self::CountriesWidened => "countries_widened",
            Self::ExpirationLonger => "expiration_longer",
            Self::ExpirationShorter => "expiration_shorter",
            Self::ForwardedHeaderChanged => "forwarded_header_changed",
            Self::GeoipDatabaseChanged => "geoip_database_changed",
            Self::IpRangesChanged => "ip_ranges_changed",
            Self::IpRangesNarrowed => "ip_ranges_narrowed",
            Self::IpRangesWidened => "ip_ranges_widened",
            Self::IssuerChanged => "issuer_changed",
            Self::JwksAlgMemberChanged => "jwks_alg_member_changed",
            Self::JwksMaxAgeChanged => "jwks_max_age_changed",
            Self::JwsAlgChanged => "jws_alg_changed",
            Self::LimitLowered => "limit_lowered",
            Self::LimitRaised => "limit_raised",
            Self::ListenChanged => "listen_changed",
            Self::ListingScopeChanged => "listing_scope_changed",
            Self::ListingScopeNarrowed => "listing_scope_narrowed",
            Self::ListingScopeWidened => "listing_scope_widened",
            Self::ManagePermissionChanged => "manage_permission_changed",
            Self::MetricsListenChanged => "metrics_listen_changed",
            Self::PermissionsGained => "permissions_gained",
            Self::PermissionsLost => "permissions_lost",
            Self::ProjectAdded => "project_added",
            Self::ProjectDescriptionChanged => "project_description_changed",
            Self::ProjectRemoved => "project_removed",
            Self::RateLimitLowered => "rate_limit_lowered",
            Self::RateLimitRaised => "rate_limit_raised",
            Self::RateLimitStoreChanged => "rate_limit_store_changed",
            Self::RevocationsMaxAgeChanged => "revocations_max_age_changed",
            Self::ScopeRuleChanged => "scope_rule_changed",
            Self::TemplateActivated => "template_activated",
            Self::TemplateAdded => "template_added",
            Self::TemplateCreatedAtChanged => "template_created_at_changed",
            Self::TemplateCutOffNarrowed => "template_cut_off_narrowed",
            Self::TemplateCutOffWidened => "template_cut_off_widened",
            Self::TemplateDeactivated => "template_deactivated",
            Self::TemplateDescriptionChanged => "template_description_changed",
            Self::TemplateProjectChanged => "template_project_changed",
            Self::TemplateRemoved => "template_removed",
            Self::TemplateUnrevoked => "template_unrevoked",
            Self::TrustedProxiesChanged => "trusted_proxies_changed",
            Self::TrustedProxiesNarrowed => "trusted_proxies_narrowed",
            Self::TrustedProxiesWidened => "trusted_proxies_widened",
            Self::UploadContentTypesChanged => "upload_content_types_changed",
            Self::UploadContentTypesNarrowed => "upload_content_types_narrowed",
            Self::UploadContentTypesWidened => "upload_content_types_widened",
            Self::UploadMaxFileSizeNarrowed => "upload_max_file_size_narrowed",
            Self::UploadMaxFileSizeWidened => "upload_max_file_size_widened",
            Self::UploadScopeChanged => "upload_scope_changed",
            Self::UploadScopeNarrowed => "upload_scope_narrowed",
            Self::UploadScopeWidened => "upload_scope_widened",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChangeKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ChangeKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
