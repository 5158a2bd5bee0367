//! Campaign codes: a package a customer names in the first message of a
//! conversation, and the package reply it triggers. Codes are created through the
//! API; the per-message bookkeeping only reads them.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::campaign_codes;
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;

// ------------------------------------------------------------------ campaign codes

/// A row of `campaign_codes`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, serde::Deserialize)]
#[diesel(table_name = campaign_codes)]
pub struct CampaignCodeRow {
    /// `PKG_MONTH_YEAR_TYPE`, upper case.
    pub code: String,
    /// Team.
    pub team_id: String,
    /// Package name.
    pub package_name: String,
    /// Price in whole currency units (e.g. 25000000 for Rp 25.000.000).
    pub price: Option<i64>,
    /// Currency label (`Rp`, `IDR`, `USD`).
    pub currency: Option<String>,
    /// Departure date (ISO 8601 date).
    pub departure_date: Option<String>,
    /// Days.
    pub duration_days: Option<i32>,
    /// Seats.
    pub quota: Option<i32>,
    /// Package image (sent as WhatsApp image).
    pub image_url: Option<String>,
    /// Brochure.
    pub brochure_url: Option<String>,
    /// Itinerary text or URL.
    pub itinerary: Option<String>,
    /// 1 while usable.
    pub active: i32,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// Inserts a code.
///
/// # Errors
/// [`AppError::Conflict`] when it exists; database errors.
pub fn create_code(c: &mut DbConn, row: &CampaignCodeRow) -> Result<(), AppError> {
    match diesel::insert_into(campaign_codes::table)
        .values(row)
        .execute(c)
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(AppError::Conflict(format!("code {} exists", row.code)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The package reply of seed 001 (text; the image goes as the media itself).
pub fn package_text(code: &CampaignCodeRow) -> String {
    let mut s = format!("Thank you for your interest in {}!", code.package_name);
    if let Some(p) = code.price {
        s.push_str(&format!(
            "\nPrice: {} {}",
            code.currency.as_deref().unwrap_or(""),
            group_thousands(p)
        ));
    }
    if let Some(d) = &code.departure_date {
        s.push_str(&format!("\nDeparture: {d}"));
    }
    if let Some(n) = code.duration_days {
        s.push_str(&format!("\nDuration: {n} days"));
    }
    if let Some(q) = code.quota {
        s.push_str(&format!("\nSeats: {q}"));
    }
    if let Some(b) = &code.brochure_url {
        s.push_str(&format!("\nBrochure: {b}"));
    }
    if let Some(i) = &code.itinerary {
        s.push_str(&format!("\nItinerary: {i}"));
    }
    s.push_str("\nWould you like to know more about the package?");
    s
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
