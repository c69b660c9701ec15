"""Declared provider answer shapes, as data: by (source label, fetch type), where an answer's checked
objects are, the fields each must have and every field it may have (``providers.drift`` checks them).

``expected`` = the fields the provider's parser reads that every answer carries (a field present only
on some items, such as a video's play count, cannot be demanded of each); ``known`` = the fields the
provider's current public answer carries (the fixtures in ``providers/fixtures``). Pairs without a shape
are not checked: see the README's drift section for which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Shape:
    """Where the checked objects are, the fields each must carry, and every field it may carry.

    ``items`` is a dotted path to the objects (a step that meets a list goes into each element, and a path
    that ends at a list checks each element), or None for the answer itself."""

    items: str | None
    expected: frozenset[str]
    known: frozenset[str]

    def objects(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The checked objects of ``payload``; none where the path leads nowhere (the parser refuses that).

        An object that is no list's element and carries none of the expected fields is not the object the
        shape describes (a refusal or error body in its place, or another call's answer, such as a token
        check's ``data``), which the parser classifies."""
        # Each value found, and whether it is (inside) a list's element.
        level: list[tuple[Any, bool]] = [(payload, False)]
        for step in self.items.split(".") if self.items is not None else ():
            found = [(value.get(step), listed) for value, listed in level if isinstance(value, dict)]
            level = [
                pair
                for value, listed in found
                for pair in ([(item, True) for item in value] if isinstance(value, list) else [(value, listed)])
            ]
        return [
            value
            for value, listed in level
            if isinstance(value, dict) and (listed or not self.expected or self.expected & value.keys())
        ]


def _names(text: str) -> frozenset[str]:
    """Field names, space-separated."""
    return frozenset(text.split())


def _shape(items: str | None, expected: str, known: str | frozenset[str]) -> Shape:
    """A shape from space-separated field names (``known`` may be a shared set)."""
    return Shape(items, _names(expected), _names(known) if isinstance(known, str) else known)


# The top-level parts of a YouTube Data API resource (its reference's "Resource representation").
_YT_PARTS = _names(
    "kind etag id snippet contentDetails statistics status topicDetails brandingSettings localizations "
    "player recordingDetails liveStreamingDetails subscriberSnippet replies contentOwnerDetails "
    "auditDetails paidProductPlacementDetails"
)

# The expected fields are the parts each Data API parser reads (and asks for).
_YT_DATA = {
    "fetch_yt_profiles": _shape("items", "id snippet statistics", _YT_PARTS),
    "fetch_yt_posts": _shape("items", "id snippet statistics contentDetails", _YT_PARTS),
    "fetch_yt_playlist_items": _shape("items", "id contentDetails", _YT_PARTS),
    "fetch_yt_activities": _shape("items", "snippet contentDetails", _YT_PARTS),
    "fetch_yt_subscriptions": _shape("items", "snippet", _YT_PARTS),
    "fetch_yt_comments": _shape("items", "snippet", _YT_PARTS),
    "fetch_yt_search": _shape("items", "id", _YT_PARTS),
    "fetch_yt_genre_search": _shape("items", "id", _YT_PARTS),
    "fetch_yt_channel_posts": _shape("items", "id", _YT_PARTS),
}
# The Data API's RapidAPI proxies answer its shapes and are read by its parsers, for the calls they serve.
_YT_PROXIES = {
    "yt-v31": ("fetch_yt_profiles", "fetch_yt_posts", "fetch_yt_playlist_items", "fetch_yt_channel_posts"),
    "rapidapi-yt-search": ("fetch_yt_search", "fetch_yt_comments"),
}

# A YouTube Analytics report (``youtube_analytics``): ``rows`` is left out of a report with no data.
_YT_REPORT = _shape(None, "columnHeaders", "kind columnHeaders rows")

# Instagram's private (v1) ``user`` object, as arraybobo, jotucker and bestsolutions answer it.
_IG_V1_USER = _names(
    "account_type address_street bio_links biography biography_with_entities business_contact_method "
    "can_hide_category category category_id city_id city_name contact_phone_number direct_messaging "
    "external_lynx_url external_url fan_club_info fbid_v2 follower_count following_count "
    "following_tag_count full_name has_anonymous_profile_picture has_chaining has_guides "
    "has_highlight_reels hd_profile_pic_url_info hd_profile_pic_versions interop_messaging_user_fbid "
    "is_business is_favorite is_interest_account is_memorialized is_private is_verified latitude "
    "longitude media_count mutual_followers_count pk pk_id profile_pic_id profile_pic_url pronouns "
    "public_email public_phone_country_code public_phone_number should_show_category "
    "show_account_transparency_details total_igtv_videos username usertags_count zip"
)
# What ``instagram_shapes.v1_profile`` (and its counts) reads.
_IG_V1_USER_READ = (
    "pk username biography full_name account_type interop_messaging_user_fbid external_url is_private "
    "is_verified media_count follower_count following_count"
)
_IG_V1_PROFILE = _shape("user", _IG_V1_USER_READ, _IG_V1_USER)

# A user node of Instagram's web user edges (followers, following, likers): every field it may carry.
_WEB_USER_EDGE_NODE = (
    "followed_by_viewer full_name id is_private is_verified profile_pic_url requested_by_viewer username"
)

# A post node of Instagram's web timeline edges (a profile's posts, its tagged posts, a hashtag's), as
# arraybobo and the others answer it: every field it may carry.
_WEB_TIMELINE_NODE = (
    "__typename accessibility_caption clips_music_attribution_info coauthor_producers "
    "comments_disabled dash_info dimensions display_url edge_liked_by edge_media_preview_like "
    "edge_media_to_caption edge_media_to_comment edge_media_to_sponsor_user edge_media_to_tagged_user "
    "edge_sidecar_to_children fact_check_information fact_check_overall_rating felix_profile_grid_crop "
    "gating_info has_audio has_upcoming_event id is_affiliate is_paid_partnership is_video location "
    "media_overlay_info media_preview owner pinned_for_users product_type sharing_friction_info "
    "shortcode taken_at_timestamp thumbnail_resources thumbnail_src video_url video_view_count "
    "viewer_can_reshare viewer_has_liked viewer_has_saved viewer_has_saved_to_collection "
    "viewer_in_photo_of_you"
)


# A v1 media item carries ``location`` (and ``lat``/``lng``) only when it has one, and ``usertags`` only
# when someone is tagged: known, never expected.
_OTHERS: dict[tuple[str, str], Shape] = {
    ("rapidapi-arraybobo", "fetch_profile_by_handle"): _IG_V1_PROFILE,
    ("rapidapi-arraybobo", "fetch_profile_by_id"): _IG_V1_PROFILE,
    ("rapidapi-arraybobo", "fetch_post_by_shortcode"): _shape(
        None,
        "__typename display_resources display_url edge_media_preview_like edge_media_to_caption "
        "edge_media_to_comment edge_media_to_sponsor_user edge_media_to_tagged_user id location owner "
        "shortcode taken_at_timestamp thumbnail_src",
        "__typename accessibility_caption caption_is_edited clips_music_attribution_info coauthor_producers "
        "commenting_disabled_for_viewer comments_disabled dash_info dimensions display_resources display_url "
        "edge_media_preview_comment edge_media_preview_like edge_media_to_caption edge_media_to_comment "
        "edge_media_to_hoisted_comment edge_media_to_parent_comment edge_media_to_sponsor_user "
        "edge_media_to_tagged_user edge_related_profiles edge_sidecar_to_children "
        "edge_web_media_to_related_media encoding_status fact_check_information fact_check_overall_rating "
        "gating_info has_audio has_ranked_comments has_upcoming_event id is_ad is_affiliate "
        "is_paid_partnership is_published is_video like_and_view_counts_disabled location media_overlay_info "
        "media_preview owner pinned_for_users product_type sharing_friction_info shortcode "
        "taken_at_timestamp thumbnail_src title upcoming_event video_duration video_play_count video_url "
        "video_view_count viewer_can_reshare viewer_has_liked viewer_has_saved "
        "viewer_has_saved_to_collection viewer_in_photo_of_you",
    ),
    # bestsolutions answers the v1 user at the top level, and reads no fbid.
    ("rapidapi-bestsolutions", "fetch_profile_by_handle"): _shape(
        None, _IG_V1_USER_READ.replace("interop_messaging_user_fbid ", ""), _IG_V1_USER
    ),
    ("rapidapi-bestsolutions", "fetch_profile_by_id"): _shape(
        None, _IG_V1_USER_READ.replace("interop_messaging_user_fbid ", ""), _IG_V1_USER
    ),
    ("rapidapi-bestsolutions", "fetch_profile_posts_by_id"): _shape(
        "items",
        "caption code comment_count id media_type owner pk taken_at user",
        "accessibility_caption can_viewer_reshare caption caption_is_edited carousel_media "
        "carousel_media_count client_cache_key code comment_count comment_threading_enabled "
        "commerciality_status device_timestamp filter_type has_audio has_liked id ig_play_count "
        "image_versions2 is_in_profile_grid is_paid_partnership lat like_and_view_counts_disabled like_count "
        "lng location media_type original_height original_width owner pk play_count product_type "
        "profile_grid_control_enabled sponsor_tags taken_at top_likers user usertags video_duration "
        "video_versions view_count",
    ),
    ("rapidapi-jotucker", "fetch_profile_by_handle"): _IG_V1_PROFILE,
    ("rapidapi-jotucker", "fetch_profile_by_id"): _IG_V1_PROFILE,
    ("rapidapi-jotucker", "fetch_profile_posts_by_id"): _shape(
        "items",
        "caption code comment_count id media_type owner pk taken_at user",
        "accessibility_caption can_view_more_preview_comments can_viewer_save caption caption_is_edited "
        "carousel_media carousel_media_count client_cache_key code comment_count comment_likes_enabled "
        "comment_threading_enabled device_timestamp filter_type has_audio has_liked has_more_comments id "
        "ig_play_count image_versions2 is_paid_partnership like_and_view_counts_disabled like_count location "
        "max_num_visible_preview_comments media_type number_of_qualities organic_tracking_token "
        "original_height original_width owner photo_of_you pk play_count preview_comments product_type "
        "sponsor_tags taken_at top_likers user usertags video_duration video_versions view_count",
    ),
    ("rapidapi-jotucker", "fetch_post_by_shortcode"): _shape(
        "items",
        "caption code comment_count id like_count media_type owner pk taken_at user",
        "accessibility_caption can_view_more_preview_comments can_viewer_save caption caption_is_edited "
        "carousel_media carousel_media_count client_cache_key code comment_count comment_likes_enabled "
        "comment_threading_enabled device_timestamp filter_type has_audio has_liked has_more_comments id "
        "ig_play_count image_versions2 is_paid_partnership like_and_view_counts_disabled like_count location "
        "max_num_visible_preview_comments media_type number_of_qualities organic_tracking_token "
        "original_height original_width owner photo_of_you pk play_count preview_comments product_type "
        "sponsor_tags taken_at top_likers user video_duration video_versions view_count",
    ),
    ("rapidapi-neotank", "fetch_profile_by_handle"): _shape(
        None,
        "id username profile_pic_url_hd profile_pic_url full_name biography external_url fbid category_name "
        "business_category_name is_private is_verified edge_followed_by edge_follow "
        "edge_owner_to_timeline_media edge_felix_video_timeline is_business_account is_professional_account",
        "bio_links biography biography_with_entities blocked_by_viewer business_address_json "
        "business_category_name business_contact_method business_email business_phone_number category_enum "
        "category_name city_name country_block edge_felix_video_timeline edge_follow edge_followed_by "
        "edge_media_collections edge_owner_to_timeline_media edge_saved_media external_url "
        "external_url_linkshimmed fbid followed_by_viewer follows_viewer full_name group_metadata "
        "has_ar_effects has_blocked_viewer has_channel has_clips has_guides has_requested_viewer "
        "hide_like_and_view_counts highlight_reel_count id is_business_account is_guardian_of_viewer "
        "is_joined_recently is_private is_professional_account is_regulated_c18 is_supervision_enabled "
        "is_verified is_verified_by_mv4b overall_category_name profile_pic_url profile_pic_url_hd pronouns "
        "restricted_by_viewer should_show_category should_show_public_contacts transparency_label "
        "transparency_product username",
    ),
    ("rapidapi-yt", "fetch_yt_profiles"): _shape(
        None,
        "badges banner channelId country description joinedDate keywords links stats title username",
        "artistBio avatar badges banner channelId country description hasBusinessEmail isFamilySafe "
        "joinedDate joinedDateText keywords links stats title username",
    ),
    ("rapidapi-neotank", "fetch_profile_posts_by_id"): _shape(
        "edges.node",
        "__typename display_url edge_media_preview_like edge_media_to_caption edge_media_to_comment "
        "edge_media_to_sponsor_user edge_media_to_tagged_user id location owner shortcode "
        "taken_at_timestamp thumbnail_src",
        _WEB_TIMELINE_NODE,
    ),
    ("rapidapi-igapi", "fetch_followers"): _shape(
        "edges.node",
        "full_name id is_private is_verified profile_pic_url username",
        "followed_by_viewer follows_viewer full_name id is_private is_verified profile_pic_url "
        "requested_by_viewer username",
    ),
    ("rapidapi-arraybobo", "fetch_profile_posts_by_id"): _shape(
        "data.user.edge_owner_to_timeline_media.edges.node",
        "__typename display_url edge_media_to_comment location owner shortcode taken_at_timestamp thumbnail_src",
        _WEB_TIMELINE_NODE,
    ),
    ("rapidapi-arraybobo", "fetch_tagged_posts_by_profile_id"): _shape(
        "data.user.edge_user_to_photos_of_you.edges.node",
        "__typename display_url edge_media_preview_like edge_media_to_caption edge_media_to_comment "
        "edge_media_to_sponsor_user edge_media_to_tagged_user location owner shortcode taken_at_timestamp "
        "thumbnail_src",
        _WEB_TIMELINE_NODE,
    ),
    ("rapidapi-arraybobo", "fetch_reels_posts"): _shape(
        "items.media",
        "caption code comment_count image_versions2 like_count media_type owner pk play_count taken_at "
        "user video_duration video_versions view_count",
        "caption caption_is_edited client_cache_key clips_metadata code comment_count "
        "comment_inform_treatment device_timestamp filter_type has_audio id ig_play_count image_versions2 "
        "is_dash_eligible is_in_profile_grid is_paid_partnership like_and_view_counts_disabled like_count "
        "location media_type number_of_qualities original_height original_width owner pk play_count "
        "product_type profile_grid_control_enabled sharing_friction_info sponsor_tags taken_at user "
        "usertags video_codec video_duration video_versions view_count",
    ),
    ("rapidapi-arraybobo", "fetch_story_posts_by_profile_id"): _shape(
        "reels_media.items",
        "caption code image_versions2 media_type pk taken_at user",
        "can_reply can_reshare can_send_prompt caption caption_is_edited client_cache_key code "
        "device_timestamp expiring_at filter_type has_audio has_shared_to_fb id image_versions2 "
        "is_dash_eligible is_in_profile_grid is_paid_partnership like_and_view_counts_disabled media_type "
        "number_of_qualities original_height original_width pk product_type reel_mentions sponsor_tags "
        "story_hashtags story_is_saved_to_archive story_link_stickers supports_reel_reactions taken_at "
        "user video_duration video_versions",
    ),
    ("rapidapi-jotucker", "fetch_followers"): _shape(
        "data.user.edge_followed_by.edges.node",
        "full_name id is_private is_verified profile_pic_url username",
        _WEB_USER_EDGE_NODE,
    ),
    ("rapidapi-jotucker", "fetch_following"): _shape(
        "data.user.edge_follow.edges.node",
        "full_name id is_private is_verified profile_pic_url username",
        _WEB_USER_EDGE_NODE,
    ),
    ("rapidapi-jotucker", "fetch_post_likes"): _shape(
        "data.shortcode_media.edge_liked_by.edges.node",
        "id is_private is_verified profile_pic_url username",
        _WEB_USER_EDGE_NODE,
    ),
    ("rapidapi-jotucker", "fetch_post_comments"): _shape(
        "data.shortcode_media.edge_media_to_parent_comment.edges.node",
        "created_at edge_liked_by id owner text",
        "created_at did_report_as_spam edge_liked_by edge_threaded_comments id is_restricted_pending owner "
        "text viewer_has_liked",
    ),
    ("rapidapi-jotucker", "fetch_hashtag_posts"): _shape(
        "data.hashtag.edge_hashtag_to_ranked_media.edges.node",
        "__typename display_url edge_liked_by edge_media_preview_like edge_media_to_caption "
        "edge_media_to_comment edge_media_to_sponsor_user edge_media_to_tagged_user id location owner "
        "shortcode taken_at_timestamp thumbnail_src",
        _WEB_TIMELINE_NODE,
    ),
    ("rocketapi", "fetch_reels_posts"): _shape(
        "response.body.items.media",
        "caption code comment_count id image_versions2 is_paid_partnership like_count media_type owner pk "
        "play_count product_type taken_at user video_duration video_versions view_count",
        "caption caption_is_edited client_cache_key clips_metadata code comment_count "
        "comment_inform_treatment device_timestamp filter_type has_audio id ig_play_count image_versions2 "
        "is_dash_eligible is_in_profile_grid is_paid_partnership like_and_view_counts_disabled like_count "
        "location media_type number_of_qualities original_height original_width owner pk play_count "
        "product_type profile_grid_control_enabled reshare_count sharing_friction_info sponsor_tags "
        "taken_at user usertags video_codec video_duration video_versions view_count",
    ),
    ("rocketapi", "fetch_followers"): _shape(
        "response.body.users",
        "full_name is_private is_verified pk profile_pic_url username",
        "account_badges fbid_v2 friendship_status full_name has_anonymous_profile_picture is_private "
        "is_unpublished is_verified latest_reel_media pk pk_id profile_pic_id profile_pic_url username",
    ),
    ("rocketapi", "fetch_post_by_shortcode"): _shape(
        "response.body.items",
        "caption code comment_count id is_paid_partnership like_count media_type owner pk product_type taken_at user",
        "accessibility_caption can_viewer_reshare caption caption_is_edited carousel_media "
        "carousel_media_count client_cache_key code comment_count comment_threading_enabled "
        "commerciality_status device_timestamp filter_type has_audio has_liked id ig_play_count "
        "image_versions2 is_in_profile_grid is_paid_partnership lat like_and_view_counts_disabled like_count "
        "lng location media_type original_height original_width owner pk play_count product_type "
        "profile_grid_control_enabled reshare_count taken_at top_likers user usertags video_duration "
        "video_versions view_count",
    ),
    ("rocketapi", "fetch_story_posts_by_profile_id"): _shape(
        "response.body.reels_media.items",
        "caption code id image_versions2 is_paid_partnership media_type pk product_type taken_at user",
        "can_reply can_reshare can_send_prompt caption caption_is_edited client_cache_key code "
        "device_timestamp expiring_at filter_type has_audio has_shared_to_fb id image_versions2 "
        "is_dash_eligible is_in_profile_grid is_paid_partnership like_and_view_counts_disabled location "
        "media_type number_of_qualities original_height original_width pk product_type reel_mentions "
        "sponsor_tags story_hashtags story_is_saved_to_archive story_link_stickers supports_reel_reactions "
        "taken_at user video_duration video_versions",
    ),
    ("lama", "fetch_profile_by_handle"): _shape(
        "graphql.user",
        "biography business_category_name category_name edge_felix_video_timeline edge_follow "
        "edge_followed_by edge_owner_to_timeline_media external_url fbid full_name id is_business_account "
        "is_private is_professional_account is_verified profile_pic_url profile_pic_url_hd username",
        "biography blocked_by_viewer business_address_json business_category_name business_contact_method "
        "business_email business_phone_number category_enum category_name connected_fb_page country_block "
        "edge_felix_video_timeline edge_follow edge_followed_by edge_media_collections "
        "edge_mutual_followed_by edge_owner_to_timeline_media edge_saved_media external_url "
        "external_url_linkshimmed fbid followed_by_viewer follows_viewer full_name has_ar_effects "
        "has_blocked_viewer has_channel has_clips has_guides has_requested_viewer "
        "hide_like_and_view_counts highlight_reel_count id is_business_account is_embeds_disabled "
        "is_joined_recently is_private is_professional_account is_verified overall_category_name "
        "profile_pic_url profile_pic_url_hd pronouns requested_by_viewer restricted_by_viewer "
        "should_show_category should_show_public_contacts username",
    ),
    ("lama", "fetch_post_by_shortcode"): _shape(
        "items",
        "caption code comment_count id is_paid_partnership like_count media_type owner pk product_type taken_at user",
        "accessibility_caption can_view_more_preview_comments can_viewer_save caption caption_is_edited "
        "carousel_media carousel_media_count client_cache_key code comment_count comment_likes_enabled "
        "comment_threading_enabled device_timestamp filter_type has_audio has_liked has_more_comments id "
        "ig_play_count image_versions2 is_paid_partnership like_and_view_counts_disabled like_count "
        "location max_num_visible_preview_comments media_type number_of_qualities organic_tracking_token "
        "original_height original_width owner photo_of_you pk play_count preview_comments product_type "
        "sponsor_tags taken_at top_likers user video_duration video_versions view_count",
    ),
    ("lama", "fetch_profile_by_id"): _shape(
        None,
        "account_type biography business_category_name category category_name city_name "
        "contact_phone_number external_url follower_count following_count full_name "
        "interop_messaging_user_fbid is_business is_private is_verified latitude longitude media_count pk "
        "profile_pic_url profile_pic_url_hd public_email username",
        "account_type address_street biography business_category_name business_contact_method category "
        "category_name city_id city_name contact_phone_number external_url follower_count following_count "
        "full_name instagram_location_id interop_messaging_user_fbid is_business is_private is_verified "
        "latitude longitude media_count pk profile_pic_url profile_pic_url_hd public_email "
        "public_phone_country_code public_phone_number username zip",
    ),
    # Two answer versions: the date under ``date`` (v2) or ``publishedDate`` (v1); neither is demanded.
    ("rapidapi-yt", "fetch_yt_posts"): _shape(
        None,
        "author category description endScreen keywords lengthSeconds stats thumbnails title videoId",
        "author captions cards category chapters content date description endScreen isLiveContent isLiveNow "
        "keywords language lengthSeconds musics publishedDate stats superTitle thumbnails title videoId",
    ),
    # Entries are videos or shorts; only a video's ``video`` is read, so no field is demanded of each.
    ("rapidapi-yt", "fetch_yt_channel_posts"): _shape("contents", "", "short type video"),
}
# The REST orders list, the GraphQL orders query and its follow-up line items query all serve
# fetch_orders; each answer carries one of the three paths. A GraphQL answer carries exactly the fields
# its query asks for (``shopify_graphql.ORDERS_QUERY``), all of which the parser reads.
_SHOPIFY_REST = _shape(
    "orders",
    "fulfillments id landing_site line_items name",
    "admin_graphql_api_id app_id billing_address browser_ip buyer_accepts_marketing cancel_reason "
    "cancelled_at cart_token checkout_id checkout_token client_details closed_at company "
    "confirmation_number confirmed contact_email created_at currency current_subtotal_price "
    "current_subtotal_price_set current_total_discounts current_total_discounts_set "
    "current_total_duties_set current_total_price current_total_price_set current_total_tax "
    "current_total_tax_set customer customer_locale device_id discount_applications discount_codes email "
    "estimated_taxes financial_status fulfillment_status fulfillments id landing_site landing_site_ref "
    "line_items location_id merchant_of_record_app_id name note note_attributes number order_number "
    "order_status_url original_total_duties_set payment_gateway_names payment_terms phone "
    "presentment_currency processed_at reference referring_site refunds shipping_address shipping_lines "
    "source_identifier source_name source_url subtotal_price subtotal_price_set tags tax_lines "
    "taxes_included test token total_discounts total_discounts_set total_line_items_price "
    "total_line_items_price_set total_outstanding total_price total_price_set total_shipping_price_set "
    "total_tax total_tax_set total_tip_received total_weight updated_at user_id",
)
_GRAPHQL_ORDER = (
    "id name number email createdAt updatedAt processedAt closedAt cancelledAt cancelReason confirmed test "
    "currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus displayFulfillmentStatus "
    "sourceName tags note subtotalPriceSet totalDiscountsSet totalTaxSet totalPriceSet customerJourneySummary "
    "fulfillments lineItems"
)
_GRAPHQL_LINE_ITEM = (
    "id title name variantTitle vendor quantity originalUnitPriceSet sku product variant requiresShipping "
    "taxable isGiftCard"
)
_SHOPIFY: dict[tuple[str, str], tuple[Shape, ...]] = {
    ("shopify", "fetch_orders"): (
        _SHOPIFY_REST,
        _shape("data.orders.nodes", _GRAPHQL_ORDER, _GRAPHQL_ORDER),
        _shape("data.order.lineItems.nodes", _GRAPHQL_LINE_ITEM, _GRAPHQL_LINE_ITEM),
    )
}

# Graph API answers carry the fields asked for (``graphapi.PROFILE_FIELDS``, ``MEDIA_FIELDS``,
# ``STORY_FIELDS``), all of which the parser reads, less those with no value, which Graph leaves out (a
# caption, a hidden like count, a copyrighted media_url, a profile's website): those are known, not expected.
_GRAPH_MEDIA = _shape(
    "business_discovery.media.data",
    "id comments_count media_type permalink timestamp username",
    "id username comments_count like_count media_type media_url caption timestamp permalink",
)
# A discovered account: the profile's fields, and its media edge (a posts page asks fewer of them).
_GRAPH_ACCOUNT = _names(
    "id ig_id name website followers_count follows_count profile_picture_url username biography media_count media"
)
_GRAPH_INSIGHTS = _shape("data", "name id", "name id period title description values total_value")
_GRAPH: dict[tuple[str, str], tuple[Shape, ...]] = {
    ("graphapi", "fetch_profile_by_handle"): (
        _shape("business_discovery", "id ig_id username followers_count follows_count media_count", _GRAPH_ACCOUNT),
        _GRAPH_MEDIA,
    ),
    ("graphapi", "fetch_profile_posts_by_handle"): (
        _shape("business_discovery", "ig_id username media_count", _GRAPH_ACCOUNT),
        _GRAPH_MEDIA,
    ),
    ("graphapi", "fetch_stories_by_handle"): (
        _shape(None, "id ig_id username", "id ig_id username media stories"),
        _shape(
            "media.data",
            "id comments_count media_type media_product_type permalink timestamp username",
            "id username comments_count like_count media_type media_product_type media_url caption timestamp permalink",
        ),
        _shape(
            "stories.data",
            "id media_type media_product_type owner permalink timestamp username",
            "id media_type media_product_type media_url owner permalink timestamp username caption",
        ),
    ),
    ("graphapi", "fetch_post_insights"): (_GRAPH_INSIGHTS,),
    ("graphapi", "fetch_story_insights"): (_GRAPH_INSIGHTS,),
    ("graphapi", "fetch_profile_insights"): (_GRAPH_INSIGHTS,),
}

# By (source label, fetch type): the shapes an answer may have (it carries the items path of one of them).
SHAPES: dict[tuple[str, str], tuple[Shape, ...]] = (
    {(source, operation): (shape,) for source in ("ytapitoken", "ytapi") for operation, shape in _YT_DATA.items()}
    | {
        (source, operation): (_YT_DATA[operation],)
        for source, operations in _YT_PROXIES.items()
        for operation in operations
    }
    | {call: (shape,) for call, shape in _OTHERS.items()}
    | {("yt-analytics", "fetch_yt_profile_insights"): (_YT_REPORT,)}
    | _SHOPIFY
    | _GRAPH
)
