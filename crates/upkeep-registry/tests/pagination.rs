//! Tag-list pagination against a real registry that pages.
//!
//! The tags come from a real Debian `docker-registry` (distribution 2.8) started by
//! `upkeep-testenv`, pushed there by `Registry::seed_tags`. Distribution 2.8 ignores `n` and
//! `last` and always returns every tag, so the paging itself is done by `upkeep-testenv`'s
//! `FaultProxy` in front of it, which sorts, cuts pages at `n` after `last`, and writes `Link`
//! as its `LinkStyle` says — covering what registries actually ship (distribution 3, GHCR,
//! Harbor, Quay…): relative `Link`, absolute `Link`, no `Link` at all (the client continues
//! with `last=`), a hard page cap (`Fault::CapPageSize`), a `Link` to another host.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::time::Duration;

use upkeep_registry::{Client, ClientConfig, Credentials, RegistryError, Source, SourceOptions};
use upkeep_testenv::{Fault, FaultProxy, LinkStyle, Registry, RegistryKind};

#[derive(Clone, Debug)]
enum Mode {
    RelativeLink,
    AbsoluteLink,
    NoLink,
    Cap(u32),
    ForeignLink,
}

impl Mode {
    /// The proxy settings that make the registry page this way.
    fn proxy_settings(&self) -> (Fault, LinkStyle) {
        match self {
            Self::RelativeLink => (Fault::None, LinkStyle::Relative),
            Self::AbsoluteLink => (Fault::None, LinkStyle::Absolute),
            Self::NoLink => (Fault::None, LinkStyle::None),
            Self::Cap(cap) => (Fault::CapPageSize(*cap), LinkStyle::Relative),
            Self::ForeignLink => (
                Fault::None,
                LinkStyle::OtherHost("elsewhere.invalid".to_owned()),
            ),
        }
    }
}

#[tokio::test]
async fn paginating_registries_list_everything() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut tags: Vec<String> = (0..2345)
            .map(|i| format!("1.{}.{}", i / 100, i % 100))
            .collect();
        let registry = Registry::start(RegistryKind::Plain)
            .await
            .unwrap_or_else(|e| panic!("starting the registry: {e}"));
        registry
            .seed_tags("p/app", &tags)
            .await
            .unwrap_or_else(|e| panic!("pushing tags: {e}\n{}", registry.log_tail()));
        // What every listing must return: everything pushed, in the registry's lexical order.
        tags.sort();
        let client = Client::new(ClientConfig::default());
        let cases: &[(Mode, Option<u32>, Result<usize, &str>, &str)] = &[
            (
                Mode::RelativeLink,
                Some(100),
                Ok(24),
                "relative Link (distribution 3)",
            ),
            (
                Mode::RelativeLink,
                Some(469),
                Ok(5),
                "Link and the total a multiple of n: the last page has no Link and ends it, no last= probe",
            ),
            (
                Mode::AbsoluteLink,
                Some(1000),
                Ok(3),
                "absolute Link on the same host",
            ),
            (
                Mode::NoLink,
                Some(500),
                Ok(5),
                "no Link: full pages continue with last=, the short page ends it",
            ),
            (
                Mode::NoLink,
                Some(469),
                Ok(6),
                "no Link and the total a multiple of n: an empty page ends it",
            ),
            (
                Mode::Cap(50),
                Some(1000),
                Ok(47),
                "registry caps n at 50 but sends Link",
            ),
            (
                Mode::Cap(50),
                None,
                Ok(47),
                "no n asked: the registry's default page size and Link",
            ),
            (
                Mode::ForeignLink,
                Some(100),
                Err("another host"),
                "a Link to another host is refused",
            ),
        ];
        for (mode, page_size, want, why) in cases {
            let proxy = FaultProxy::for_registry(&registry, Fault::None);
            let (fault, style) = mode.proxy_settings();
            proxy.set_fault(fault);
            proxy.set_link_style(style);
            let host = proxy.host();
            let opts = SourceOptions {
                insecure: true,
                page_size: *page_size,
                ..SourceOptions::default()
            };
            let src = Source::new(
                &client,
                &format!("oci://{host}/p/app"),
                None,
                opts,
                &Credentials::Anonymous,
            )
            .expect("source");
            let r = src.list_tags().await;
            match (r, want) {
                (Ok(list), Ok(pages)) => {
                    let got: Vec<&str> = list.names().collect();
                    assert!(
                        got.iter().copied().eq(tags.iter().map(String::as_str)),
                        "{why}: all tags in order"
                    );
                    assert_eq!(list.pages, *pages, "{why}: pages");
                    let requests = proxy.requests();
                    assert!(
                        requests.iter().all(|r| r.is_tags_list() && r.status == 200),
                        "{why}: only tag listings, all answered: {requests:?}"
                    );
                    assert_eq!(requests.len(), *pages, "{why}: one request per page");
                }
                (Err(e), Err(w)) => {
                    assert!(
                        matches!(e, RegistryError::InvalidResponse { .. }),
                        "{why}: {e:?}"
                    );
                    assert!(e.to_string().contains(w), "{why}: {e}");
                }
                (r, _) => panic!("{why}: unexpected {r:?}"),
            }
        }
    })
    .await
    .expect("test finished within its time limit");
}
