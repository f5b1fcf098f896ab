//! ROA origin validation in the table (RFC 6811): the ROA set, and re-evaluation of
//! received routes when it changes.

use crate::{Rib, RoaChange, RoaSet};

impl Rib {
    /// Replaces the ROA set. Received routes covered by a changed ROA are validated
    /// again and, where their verdict changes, accepted or filtered: FIB changes and
    /// exports follow as for an UPDATE, no session is touched.
    pub fn set_roas(&mut self, roas: RoaSet) -> RoaChange {
        let _ = roas;
        unimplemented!("set_roas")
    }

    /// The ROA set in use.
    pub fn roas(&self) -> &RoaSet {
        unimplemented!("roas")
    }
}
