"""``parley campaign preview``: what a campaign will do, and why, before anyone is contacted."""
