//! Rule evaluation: [`Policy::evaluate`].

use crate::{Context, Outcome, Policy};
use rr_bgp::packet::Attributes;

impl Policy {
    /// Evaluates the policy for one route; actions modify `attrs` in place.
    pub fn evaluate(&self, ctx: &Context, attrs: &mut Attributes) -> Outcome {
        let _ = (ctx, attrs);
        unimplemented!("rr-policy evaluation")
    }
}
