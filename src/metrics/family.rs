//! Counter families whose members are all made at start-up, one per label value, so that
//! counting is one atomic add: no lock, no label set built per event; and the
//! registration of plain gauges from a table.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Registers each `(name, help, gauge)`.
pub(crate) fn register_gauges<const N: usize>(
    registry: &mut Registry,
    gauges: [(&str, &str, &Gauge); N],
) {
    for (name, help, gauge) in gauges {
        registry.register(name, help, gauge.clone());
    }
}

/// One label, with a fixed set of values.
pub(crate) type Label = [(&'static str, &'static str); 1];

/// A counter per value of one label.
#[derive(Debug, Clone)]
pub(crate) struct CounterSet<const N: usize> {
    family: Family<Label, Counter>,
    members: [Counter; N],
}

impl<const N: usize> CounterSet<N> {
    pub(crate) fn new(label: &'static str, values: [&'static str; N]) -> Self {
        let family = Family::<Label, Counter>::default();
        let members = values.map(|value| family.get_or_create_owned(&[(label, value)]));
        CounterSet { family, members }
    }

    /// The counter of the `index`th value given to [`CounterSet::new`].
    pub(crate) fn at(&self, index: usize) -> &Counter {
        &self.members[index]
    }

    pub(crate) fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.family.clone());
    }
}
