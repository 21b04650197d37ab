//! [`KeyExtractor`]: which bucket a request takes its tokens from; [`MissingKey`]: what
//! happens to a request without a key.

/// Picks the bucket a request takes its tokens from: `Some(key)` for that key's bucket (a
/// client IP, a user id, an API key, a tenant), `None` for a request that has no key (see
/// [`MissingKey`] for what happens to it).
///
/// Any closure `Fn(&Req) -> Option<String>` is an extractor. The key is owned because the
/// decision may outlive `call` (on Redis it awaits a script); a key borrowed from the
/// request would tie the response future to the request.
///
/// ```
/// use keel_limiter::tower::KeyExtractor;
///
/// struct Request {
///     api_key: Option<&'static str>,
/// }
///
/// let by_api_key = |req: &Request| req.api_key.map(str::to_owned);
/// assert_eq!(by_api_key.key(&Request { api_key: Some("k-42") }).as_deref(), Some("k-42"));
/// assert_eq!(by_api_key.key(&Request { api_key: None }), None);
/// ```
pub trait KeyExtractor<Req> {
    /// The key of `req`'s bucket, or `None` if it has none.
    fn key(&self, req: &Req) -> Option<String>;
}

impl<F, Req> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> Option<String>,
{
    #[inline]
    fn key(&self, req: &Req) -> Option<String> {
        self(req)
    }
}

/// The extractor of an unkeyed layer ([`RateLimitLayer::unkeyed`](super::RateLimitLayer::unkeyed)):
/// no request has a key, so with the default [`MissingKey::Shared`] every request takes
/// from the limiter's one unkeyed bucket, a limit on the whole service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unkeyed;

impl<Req> KeyExtractor<Req> for Unkeyed {
    #[inline]
    fn key(&self, _req: &Req) -> Option<String> {
        None
    }
}

/// What happens to a request whose [`KeyExtractor`] finds no key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingKey {
    /// Take the tokens from the limiter's unkeyed bucket, which every keyless request
    /// shares (the default): requests that cannot be told apart are limited together, as
    /// one client. A client cannot escape its limit by leaving its key out, but keyless
    /// clients can crowd each other out.
    #[default]
    Shared,
    /// Not limited: the request goes to the inner service without asking the limiter. For
    /// keyless traffic that is trusted or limited elsewhere (health checks, internal calls
    /// without a tenant).
    Allow,
}
