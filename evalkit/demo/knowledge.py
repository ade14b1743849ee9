"""The demo agent's knowledge base: short IT-support articles."""

from __future__ import annotations

ARTICLES: dict[str, str] = {
    "password-reset": (
        "To reset a forgotten password, open the self-service portal at https://id.example.com/reset, "
        "verify with your registered phone, and choose a new password of at least 14 characters. "
        "A reset link is valid for 30 minutes."
    ),
    "account-locked": (
        "Accounts lock after 5 failed sign-in attempts and unlock automatically after 15 minutes. "
        "The service desk can unlock an account sooner after verifying your identity."
    ),
    "mfa-new-phone": (
        "If you changed phones, re-enrol multi-factor authentication (MFA) in the self-service portal "
        "using a backup code; without a backup code the service desk must verify your identity first."
    ),
    "vpn-setup": (
        "Install the GlobalConnect VPN client from the Software Center, sign in with your work account, "
        "and choose the gateway nearest to you. VPN is required for the finance and HR systems."
    ),
    "vpn-troubleshoot": (
        "If the VPN disconnects or fails with error 809, check that your home router allows UDP port 4500, "
        "update the GlobalConnect client to the latest version, and restart it."
    ),
    "access-request": (
        "Request access to shared drives or applications through the Access Request form in the IT portal. "
        "Your manager must approve the request; approved access is granted within one business day."
    ),
    "printer-setup": (
        "Add an office printer from Settings > Printers by choosing 'Add printer' and selecting the queue "
        "named after your floor, for example PRN-3F. Badge-release printing: tap your badge at the printer."
    ),
    "printer-jam": (
        "For a paper jam, open tray 2 and the rear door, remove the paper gently, and close both doors. "
        "If the printer shows error 50.4, power-cycle it and report it if it returns."
    ),
    "email-quota": (
        "Mailboxes hold 50 GB. When your mailbox is full, archive old mail with Online Archive or empty "
        "Deleted Items; attachments over 25 MB should be shared as links instead."
    ),
    "laptop-replacement": (
        "Laptops are replaced every 4 years or when broken. Open a hardware ticket; a loaner laptop is "
        "available from the service desk the same day."
    ),
    "software-install": (
        "Approved software installs from the Software Center without admin rights. Software not in the "
        "catalogue needs a software request ticket and a security review."
    ),
    "phishing": (
        "Report suspicious email with the 'Report phishing' button in Outlook. Never share your password; "
        "IT will never ask for it. If you clicked a link, reset your password and tell the security team."
    ),
    "wifi": (
        "Connect to the Corp-Secure Wi-Fi network with your work account. Guests use Corp-Guest with a daily "
        "code from reception."
    ),
}

SERVICES: dict[str, str] = {
    "email": "operational",
    "vpn": "degraded: intermittent disconnects on the EU gateway since 09:10 UTC",
    "hr portal": "outage: HR portal unavailable, engineers investigating, next update 14:00 UTC",
    "wiki": "operational",
    "payroll": "operational",
}
