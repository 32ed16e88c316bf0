-- PCI: the card columns of the payments mart hold tokens and last-4 digits only, never
-- a card number or a holder name in clear.
select payment_id, 'card_number_token' as column_name
from {{ ref('fct_order_payments') }}
where card_number_token is not null and left(card_number_token, 4) <> 'tok_'
union all
select payment_id, 'card_holder_token'
from {{ ref('fct_order_payments') }}
where card_holder_token is not null and left(card_holder_token, 4) <> 'tok_'
union all
select payment_id, 'card_last4'
from {{ ref('fct_order_payments') }}
where card_last4 is not null and length(card_last4) <> 4
