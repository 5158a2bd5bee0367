//! Diesel table definitions, written by hand to match `migrations/` (both backends
//! share them; see the migration files for what each column means).
#![allow(missing_docs)]

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        created_at -> BigInt,
        routing_mode -> Text,
        default_capacity -> Integer,
        offer_timeout_ms -> BigInt,
        escalation -> Text,
        offline_grace_ms -> Nullable<BigInt>,
        requeue_delay_ms -> BigInt,
        rr_cursor -> Nullable<Text>,
        routing_lock -> BigInt,
    }
}

diesel::table! {
    agents (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Integer,
        created_at -> BigInt,
        capacity -> Nullable<Integer>,
        routing_lock -> BigInt,
        token_epoch -> BigInt,
    }
}

diesel::table! {
    team_members (team_id, agent_id) {
        team_id -> Text,
        agent_id -> Text,
    }
}

diesel::table! {
    contacts (id) {
        id -> Text,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        wa_id -> Nullable<Text>,
        time_zone -> Nullable<Text>,
        locale -> Nullable<Text>,
        country -> Nullable<Text>,
        last_seen_at -> Nullable<BigInt>,
        returned_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        team_id -> Text,
        contact_id -> Text,
        channel -> Text,
        status -> Text,
        assignee_id -> Nullable<Text>,
        source -> Nullable<Text>,
        page_url -> Nullable<Text>,
        last_seq -> BigInt,
        last_message_at -> Nullable<BigInt>,
        last_message_preview -> Nullable<Text>,
        last_message_sender -> Nullable<Text>,
        last_inbound_at -> Nullable<BigInt>,
        guest_read_seq -> BigInt,
        agent_read_seq -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        queued_at -> Nullable<BigInt>,
        preferred_agent_id -> Nullable<Text>,
        assigned_at -> Nullable<BigInt>,
        number_id -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        conversation_id -> Text,
        seq -> BigInt,
        direction -> Text,
        sender_kind -> Text,
        sender_id -> Nullable<Text>,
        sender_name -> Nullable<Text>,
        body -> Text,
        client_msg_id -> Nullable<Text>,
        provider_id -> Nullable<Text>,
        status -> Nullable<Text>,
        created_at -> BigInt,
        attachment -> Nullable<Text>,
        status_error -> Nullable<Text>,
    }
}

diesel::table! {
    offers (id) {
        id -> Text,
        conversation_id -> Text,
        team_id -> Text,
        status -> Text,
        round -> Integer,
        winner_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    offer_recipients (offer_id, agent_id) {
        offer_id -> Text,
        agent_id -> Text,
    }
}

diesel::table! {
    routing_events (id) {
        id -> Text,
        conversation_id -> Text,
        team_id -> Text,
        kind -> Text,
        agent_id -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        detail -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(offer_recipients -> offers (offer_id));
diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> agents (agent_id));
diesel::joinable!(conversations -> teams (team_id));
diesel::joinable!(conversations -> contacts (contact_id));
diesel::joinable!(messages -> conversations (conversation_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings,
    teams,
    agents,
    team_members,
    contacts,
    conversations,
    messages,
    offers,
    offer_recipients,
    routing_events,
);

diesel::table! {
    whatsapp_statuses (provider_id, status) {
        provider_id -> Text,
        status -> Text,
        error_code -> Nullable<BigInt>,
        error_title -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        message_id -> Nullable<Text>,
        conversation_id -> Text,
        provider -> Text,
        kind -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(outbox -> conversations (conversation_id));

diesel::allow_tables_to_appear_in_same_query!(outbox, conversations);
diesel::allow_tables_to_appear_in_same_query!(outbox, contacts);
diesel::allow_tables_to_appear_in_same_query!(outbox, messages);

diesel::table! {
    widget_settings (team_id) {
        team_id -> Text,
        prechat_fields -> Text,
        prechat_required -> Bool,
        greeting -> Text,
        away_message -> Text,
        business_hours -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::joinable!(widget_settings -> teams (team_id));
diesel::allow_tables_to_appear_in_same_query!(widget_settings, teams);

diesel::table! {
    lead_settings (team_id) {
        team_id -> Text,
        stages -> Text,
        rules -> Text,
        welcome -> Nullable<Text>,
        updated_at -> BigInt,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    leads (id) {
        id -> Text,
        team_id -> Text,
        contact_id -> Text,
        source -> Text,
        source_detail -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        stage -> Text,
        furthest_position -> Integer,
        priority -> Text,
        score -> Integer,
        campaign_code -> Nullable<Text>,
        interested_package -> Nullable<Text>,
        notes -> Nullable<Text>,
        handover_pending -> Integer,
        handover_reason -> Nullable<Text>,
        escalated -> Integer,
        quick_link_id -> Nullable<Text>,
        engagement_invited -> Integer,
        first_response_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    lead_contacts (contact_id) {
        contact_id -> Text,
        lead_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    lead_events (id) {
        id -> Text,
        lead_id -> Text,
        conversation_id -> Nullable<Text>,
        kind -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        detail -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    tasks (id) {
        id -> Text,
        lead_id -> Text,
        team_id -> Text,
        kind -> Text,
        title -> Text,
        assignee_id -> Nullable<Text>,
        due_at -> BigInt,
        status -> Text,
        overdue_notified -> Integer,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        completed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    agent_handles (handle) {
        handle -> Text,
        agent_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    quick_links (id) {
        id -> Text,
        agent_id -> Text,
        team_id -> Text,
        handle -> Text,
        source -> Text,
        clicks -> BigInt,
        conversations -> BigInt,
        active -> Integer,
        created_at -> BigInt,
    }
}

diesel::table! {
    campaign_codes (code) {
        code -> Text,
        team_id -> Text,
        package_name -> Text,
        price -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        departure_date -> Nullable<Text>,
        duration_days -> Nullable<Integer>,
        quota -> Nullable<Integer>,
        image_url -> Nullable<Text>,
        brochure_url -> Nullable<Text>,
        itinerary -> Nullable<Text>,
        active -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(leads, lead_contacts);
diesel::allow_tables_to_appear_in_same_query!(leads, contacts);
diesel::allow_tables_to_appear_in_same_query!(leads, conversations);
diesel::allow_tables_to_appear_in_same_query!(lead_contacts, contacts);
diesel::allow_tables_to_appear_in_same_query!(lead_contacts, conversations);
diesel::allow_tables_to_appear_in_same_query!(leads, agents);

diesel::table! {
    bot_settings (team_id) {
        team_id -> Text,
        settings -> Text,
        updated_at -> BigInt,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    bot_rules (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        priority -> Integer,
        match_kind -> Text,
        pattern -> Text,
        action -> Text,
        reply -> Nullable<Text>,
        disabled_channels -> Text,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    prompts (id) {
        id -> Text,
        team_id -> Text,
        prompt_type -> Text,
        revision -> Integer,
        version -> Text,
        content -> Text,
        updated_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    knowledge_docs (id) {
        id -> Text,
        team_id -> Text,
        kind -> Text,
        ref_code -> Text,
        title -> Text,
        body -> Text,
        fields -> Nullable<Text>,
        revision -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    knowledge_chunks (id) {
        id -> Text,
        doc_id -> Text,
        team_id -> Text,
        ordinal -> Integer,
        text -> Text,
        embedding -> Nullable<Binary>,
        embedding_model -> Nullable<Text>,
    }
}

diesel::table! {
    bot_conversations (conversation_id) {
        conversation_id -> Text,
        status -> Text,
        not_understood -> Integer,
        handled_seq -> BigInt,
        reason -> Nullable<Text>,
        summary -> Nullable<Text>,
        updated_at -> BigInt,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    bot_replies (id) {
        id -> Text,
        conversation_id -> Text,
        team_id -> Text,
        message_id -> Nullable<Text>,
        trigger_seq -> BigInt,
        source -> Text,
        rule_id -> Nullable<Text>,
        prompt_version -> Nullable<Text>,
        model -> Nullable<Text>,
        sources -> Text,
        confidence -> Nullable<Double>,
        escalated -> Bool,
        reason -> Nullable<Text>,
        latency_ms -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    pipeline_progress (conversation_id) {
        conversation_id -> Text,
        seq -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> BigInt,
    }
}

diesel::joinable!(knowledge_chunks -> knowledge_docs (doc_id));
diesel::allow_tables_to_appear_in_same_query!(knowledge_chunks, knowledge_docs);
diesel::allow_tables_to_appear_in_same_query!(bot_conversations, conversations);
diesel::allow_tables_to_appear_in_same_query!(pipeline_progress, conversations);
diesel::allow_tables_to_appear_in_same_query!(pipeline_progress, messages);

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        actor_id -> Nullable<Text>,
        actor_label -> Text,
        ip -> Nullable<Text>,
        action -> Text,
        target_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        team_id -> Nullable<Text>,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
    }
}

diesel::table! {
    agent_hours (agent_id) {
        agent_id -> Text,
        time_zone -> Text,
        hours -> Text,
        updated_at -> BigInt,
    }
}

diesel::joinable!(agent_hours -> agents (agent_id));
diesel::allow_tables_to_appear_in_same_query!(agent_hours, agents);

diesel::table! {
    whatsapp_numbers (id) {
        id -> Text,
        provider -> Text,
        source -> Text,
        label -> Text,
        team_id -> Nullable<Text>,
        active -> Bool,
        phone_number_id -> Nullable<Text>,
        waba_id -> Nullable<Text>,
        waha_url -> Nullable<Text>,
        waha_session -> Nullable<Text>,
        insecure_unsigned -> Bool,
        access_token_enc -> Nullable<Text>,
        app_secret_enc -> Nullable<Text>,
        api_key_enc -> Nullable<Text>,
        hmac_key_enc -> Nullable<Text>,
        session_status -> Nullable<Text>,
        session_status_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(whatsapp_numbers, teams);
diesel::allow_tables_to_appear_in_same_query!(whatsapp_numbers, conversations);

// ---- scheduler ----

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        key -> Text,
        payload -> Text,
        due_at -> BigInt,
        state -> Text,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

// ---- broadcasts ----

diesel::table! {
    broadcasts (id) {
        id -> Text,
        name -> Text,
        number_id -> Text,
        content -> Text,
        segment_id -> Nullable<Text>,
        filter -> Text,
        state -> Text,
        send_at -> Nullable<BigInt>,
        time_zone -> Nullable<Text>,
        attribution_ms -> BigInt,
        recipients -> BigInt,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    broadcast_recipients (broadcast_id, contact_id) {
        broadcast_id -> Text,
        contact_id -> Text,
        conversation_id -> Text,
        state -> Text,
        skip_reason -> Nullable<Text>,
        message_id -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    number_pacing (number_id) {
        number_id -> Text,
        pace -> Nullable<Text>,
        next_slot -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(broadcasts, whatsapp_numbers);
diesel::allow_tables_to_appear_in_same_query!(broadcast_recipients, broadcasts);
diesel::allow_tables_to_appear_in_same_query!(broadcast_recipients, messages);
diesel::allow_tables_to_appear_in_same_query!(broadcast_recipients, contacts);
diesel::allow_tables_to_appear_in_same_query!(broadcast_recipients, conversations);
diesel::allow_tables_to_appear_in_same_query!(broadcast_recipients, leads);
diesel::allow_tables_to_appear_in_same_query!(number_pacing, whatsapp_numbers);

// ---- contacts: tags, segments, consent ----

diesel::table! {
    tags (id) {
        id -> Text,
        name -> Text,
        name_key -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    contact_tags (contact_id, tag_id) {
        contact_id -> Text,
        tag_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    segments (id) {
        id -> Text,
        name -> Text,
        filter -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    contact_consent (contact_id) {
        contact_id -> Text,
        state -> Text,
        source -> Text,
        changed_by -> Nullable<Text>,
        changed_at -> BigInt,
    }
}

diesel::table! {
    consent_events (id) {
        id -> Text,
        contact_id -> Text,
        state -> Text,
        source -> Text,
        actor_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        detail -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    consent_settings (team_id) {
        team_id -> Text,
        settings -> Text,
        updated_at -> BigInt,
        updated_by -> Nullable<Text>,
    }
}

diesel::joinable!(contact_tags -> tags (tag_id));
diesel::joinable!(contact_tags -> contacts (contact_id));
diesel::allow_tables_to_appear_in_same_query!(contact_tags, tags);
diesel::allow_tables_to_appear_in_same_query!(contact_tags, contacts);
diesel::allow_tables_to_appear_in_same_query!(contact_tags, conversations);
diesel::allow_tables_to_appear_in_same_query!(contact_consent, contacts);
diesel::allow_tables_to_appear_in_same_query!(contact_consent, conversations);
diesel::allow_tables_to_appear_in_same_query!(contact_consent, contact_tags);
diesel::allow_tables_to_appear_in_same_query!(consent_events, contacts);
diesel::allow_tables_to_appear_in_same_query!(tags, contacts);

// ---- templates ----

diesel::table! {
    whatsapp_templates (id) {
        id -> Text,
        waba_id -> Text,
        meta_id -> Nullable<Text>,
        name -> Text,
        language -> Text,
        category -> Text,
        status -> Text,
        components -> Text,
        reason -> Nullable<Text>,
        deleted -> Bool,
        synced_at -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    whatsapp_template_syncs (waba_id) {
        waba_id -> Text,
        synced_at -> BigInt,
        ok -> Bool,
        error -> Nullable<Text>,
        count -> Integer,
    }
}

diesel::allow_tables_to_appear_in_same_query!(whatsapp_templates, whatsapp_template_syncs);

// ---- automations ----

diesel::table! {
    automations (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        preset -> Nullable<Text>,
        enabled -> Bool,
        enabled_at -> Nullable<BigInt>,
        trigger_kind -> Text,
        trigger_spec -> Text,
        stop_on_reply -> Bool,
        steps -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    automation_runs (id) {
        id -> Text,
        automation_id -> Text,
        team_id -> Text,
        contact_id -> Text,
        lead_id -> Nullable<Text>,
        enrol_key -> Text,
        status -> Text,
        step -> Integer,
        stop_on_reply -> Bool,
        reason -> Nullable<Text>,
        next_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(automation_runs -> automations (automation_id));
diesel::allow_tables_to_appear_in_same_query!(automation_runs, automations);
diesel::allow_tables_to_appear_in_same_query!(automation_runs, contacts);
diesel::allow_tables_to_appear_in_same_query!(automations, conversations);
