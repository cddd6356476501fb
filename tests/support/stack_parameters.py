"""Parameter values for the app stack that several template test modules evaluate it with.

``APP_OPTIONS`` switches on each option of ``infra/app.yaml`` in turn (the infrastructure and
monitoring tests run each of them); the other names are realistic values of the
parameters that take an ARN, a URL or an image.
"""

from __future__ import annotations

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
OIDC_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:company-chat-app/oidc-AbC123"  # noqa: S105 (an ARN)
OIDC = {
    "SignIn": "oidc",
    "OidcMetadataUrl": "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
    "OidcClientId": "00000000-0000-0000-0000-000000000001",
    "OidcClientSecretArn": OIDC_SECRET,
    "OidcLogoutUrl": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/logout",
    "AllowedEmailDomains": "contoso.com,example.org",
}

# Parameter sets that switch on every option of the app stack. Checkov ignores resources whose
# condition is false under the defaults, so each option set is scanned as its own template.
APP_OPTIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "oidc": OIDC,
    "sign-in-disabled": {"SignIn": "disabled"},
    "custom-domain": {
        "CustomDomainName": "chat.example.com",
        "CustomDomainCertificateArn": CERTIFICATE,
    },
    "private": {"TaskSubnets": "private"},
    "budget": {"MonthlyBudgetUsd": "100", "AlarmEmail": "ops@example.com"},
    "existing-vpc": {
        "ExistingVpcId": "vpc-0123456789abcdef0",
        "ExistingPublicSubnet1": "subnet-0123456789abcdef0",
        "ExistingPublicSubnet2": "subnet-0123456789abcdef1",
    },
    "existing-vpc-private-load-balancer": {
        "ExistingVpcId": "vpc-0123456789abcdef0",
        "ExistingPublicSubnet1": "subnet-0123456789abcdef0",
        "ExistingPublicSubnet2": "subnet-0123456789abcdef1",
        "ExistingPrivateSubnet1": "subnet-0123456789abcdef2",
        "ExistingPrivateSubnet2": "subnet-0123456789abcdef3",
    },
    "existing-vpc-private": {
        "ExistingVpcId": "vpc-0123456789abcdef0",
        "ExistingPublicSubnet1": "subnet-0123456789abcdef0",
        "ExistingPublicSubnet2": "subnet-0123456789abcdef1",
        "ExistingPrivateSubnet1": "subnet-0123456789abcdef2",
        "ExistingPrivateSubnet2": "subnet-0123456789abcdef3",
        "TaskSubnets": "private",
    },
}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/company-chat@sha256:" + "ab" * 32
