"""ptmscrape: mine pre-trained model packages from model hubs into a uniform dataset."""
